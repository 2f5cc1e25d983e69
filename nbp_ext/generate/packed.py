"""Linear layers with weights packed for oneDNN, for generation on the CPU.

A block step multiplies a handful of rows (one block of L tokens per stream) by every weight
matrix, so its cost is streaming the weights from memory. PyTorch's default CPU product
(``F.linear`` on the row-major weight) stays far from that bound for a few rows (about 3x slower at
16 rows against a 64 000 x 512 head on a 2-core AVX-512 machine); oneDNN's packed layout reaches
it for 1 and for 16 rows alike, which is what lets a 16-token step cost about what a 1-token step
costs. ``packed_linears(model)`` swaps every ``nn.Linear`` for a packed copy for the duration of a
``with`` block and puts the originals back afterwards. The packed copies are kept in a weak table
beside the model (never on it, so ``copy.deepcopy`` and ``torch.save`` of the model are unaffected),
rebuilt when a weight changes (training between sample grids) and dropped with the model.

A model cast to bfloat16 is packed too where the CPU has bf16 instructions (AVX512-BF16 or AMX):
oneDNN then multiplies in bf16 with fp32 accumulation, half the bytes per weight.

Set ``NBP_PACKED_LINEAR=0`` to turn it off.
"""

from __future__ import annotations

import os
import weakref
from contextlib import contextmanager

import torch
from torch import nn

from ..hardware import native_bf16

# model -> {layer name: (weight key, PackedLinear)}
_PACKED: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def packing_available(model: nn.Module) -> bool:
    """CPU float32 parameters (or bfloat16 ones on a CPU with bf16 instructions) and a PyTorch built
    with oneDNN's packed linear."""
    if os.environ.get("NBP_PACKED_LINEAR", "1") == "0":
        return False
    param = next(model.parameters(), None)
    if param is None or param.device.type != "cpu":
        return False
    if not (param.dtype == torch.float32 or (param.dtype == torch.bfloat16 and native_bf16(param.device))):
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    ops = torch.ops.mkldnn
    return hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise")


class PackedLinear(nn.Module):
    """Inference-only stand-in for an ``nn.Linear``: same inputs (..., in) -> outputs (..., out)."""

    def __init__(self, linear: nn.Linear, rows_hint: int):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().contiguous()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, max(1, rows_hint))
        self.bias = None if linear.bias is None else linear.bias.detach().contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _key(linear: nn.Linear) -> tuple:
    """Identifies the weight's current values: its storage and its in-place version counter."""
    w, b = linear.weight, linear.bias
    return (w.data_ptr(), w._version) + ((b.data_ptr(), b._version) if b is not None else ())


def _packed_for(model: nn.Module, rows_hint: int) -> dict[str, PackedLinear]:
    cache: dict[str, tuple[tuple, PackedLinear]] = _PACKED.setdefault(model, {})
    out = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            key = _key(mod)
            hit = cache.get(name)
            if hit is None or hit[0] != key:
                hit = (key, PackedLinear(mod, rows_hint))
                cache[name] = hit
            out[name] = hit[1]
    return out


@contextmanager
def packed_linears(model: nn.Module, rows_hint: int = 16):
    """Inside the block, ``model``'s linear layers run on packed weights (when available)."""
    if not packing_available(model) or torch.is_grad_enabled():
        yield model
        return
    packed = _packed_for(model, rows_hint)
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    try:
        for name, new in packed.items():
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            swapped.append((parent, attr, getattr(parent, attr)))
            setattr(parent, attr, new)
        yield model
    finally:
        for parent, attr, old in reversed(swapped):
            setattr(parent, attr, old)
