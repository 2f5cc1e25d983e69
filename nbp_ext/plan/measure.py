"""Measure on the CPU the activation memory of one training step, to check the plan's estimates.

``LiveBytes`` is a dispatch mode that sees every tensor an op returns while it is active (forward,
loss and backward, including the recompute of checkpointed layers) and counts the bytes of each new
storage from its creation until it is freed (a finalizer on the storage object, which PyTorch keeps
alive exactly as long as the memory). Storages that exist before the step (parameters, buffers, the
batch) are never counted, and parameter gradients are dropped the moment they are accumulated, so
the peak it reports is what the step itself holds on top of the model: the tensors saved for
backward, the gradients flowing between layers and the temporaries made by one op for the next.
Scratch memory an op allocates inside its own kernel (logsumexp's exp of its input, for one) is
not seen; the estimates count it, so they may read a little above the measurement.
"""

from __future__ import annotations

import weakref
from typing import Callable, Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LiveBytes(TorchDispatchMode):
    """Bytes of the storages created under the mode that are still alive: ``current`` and ``peak``."""

    def __init__(self, existing: Iterable[torch.Tensor] = ()):
        super().__init__()
        # Strong references keep these storage objects (and so their ids) from being reused.
        self._existing = [t.untyped_storage() for t in existing]
        self._skip = {id(s) for s in self._existing}
        self._live: dict[int, int] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key = id(storage)
        if key in self._skip or key in self._live:
            return
        self._live[key] = storage.nbytes()
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        self.current -= self._live.pop(key, 0)


def measure_step(model: nn.Module, loss_fn: Callable[[], torch.Tensor], inputs: Iterable[torch.Tensor] = (),
                 after_forward: Callable[[], None] | None = None) -> dict:
    """Run ``loss_fn()`` and its backward under ``LiveBytes`` (``after_forward()`` between them);
    return the bytes live when the loss is computed (``forward``) and the peak over forward and
    backward (``peak``). ``inputs``: the batch's tensors, which the step does not own."""
    existing = [*model.parameters(), *model.buffers(), *inputs]
    hooks = [p.register_post_accumulate_grad_hook(_drop_grad) for p in model.parameters() if p.requires_grad]
    try:
        with LiveBytes(existing) as live:
            loss = loss_fn()
            forward = live.current
            if after_forward is not None:
                after_forward()
            loss.backward()
            del loss
        return {"forward": forward, "peak": live.peak}
    finally:
        for h in hooks:
            h.remove()


def _drop_grad(p: torch.Tensor) -> None:
    p.grad = None
