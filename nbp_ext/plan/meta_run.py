"""Activation memory of a training step run on the meta device: shapes without data, in no time.

A model built under ``torch.device("meta")`` runs its forward and backward passes on meta tensors,
which carry shapes and dtypes but no memory; ``measure.LiveBytes`` counts the bytes their storages
would hold, just as it does for a real run on the CPU. What a meta run cannot show is GPU autocast
(autocast acts on real devices only), so ``CudaAutocast`` applies its casting rules by hand: matmuls
and convolutions in bf16, norms, softmaxes, exp/log/pow and losses in fp32, and the cache that keeps
the bf16 copy of each fp32 weight until the forward pass ends. ``linear_cross_entropy`` chunks its
rows by the CPU budget here, not the GPU's; the generator's plan uses its formula instead.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Variable
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from .flow import Flow
from .measure import measure_step

T = torch.Tensor
# The ops this project uses from CUDA autocast's lists (torch/csrc/autograd/autocast_mode.cpp).
LOWER_PRECISION = {
    torch.conv1d, torch.conv2d, torch.conv3d, torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d,
    F.linear, torch.matmul, T.matmul, T.__matmul__, torch.mm, T.mm, torch.bmm, T.bmm, torch.addmm, T.addmm,
    torch.baddbmm, T.baddbmm, torch.einsum, F.scaled_dot_product_attention,
}
FP32 = {
    F.group_norm, F.layer_norm, torch.group_norm, torch.layer_norm, F.softmax, F.log_softmax, torch.softmax,
    torch.log_softmax, T.softmax, T.log_softmax, F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.cross_entropy, F.nll_loss,
    torch.exp, T.exp, torch.log, T.log, torch.pow, T.pow, torch.rsqrt, T.rsqrt, torch.sum, T.sum, torch.logsumexp,
    T.logsumexp, torch.cumsum, T.cumsum, torch.prod, T.prod, F.softplus, torch.norm, T.norm,
}


class CudaAutocast(TorchFunctionMode):
    """bf16 autocast with CUDA's rules, for any device (the meta device included)."""

    def __init__(self):
        super().__init__()
        self._cache: dict[int, tuple[T, T]] = {}
        self.caching = True

    def end_forward(self) -> None:
        """Leaving the autocast region of the forward pass frees the weight cache; the backward pass
        (checkpoint recomputes included) casts afresh."""
        self._cache.clear()
        self.caching = False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is T.backward:  # a mode is off inside its own handler, but checkpoints recompute their
            return self._backward(*args, **kwargs)  # layers in the backward pass: under autocast
        if "out" not in kwargs:  # autocast leaves out= variants alone
            if func in LOWER_PRECISION:
                args, kwargs = tree_map(lambda t: self._cast(t, torch.bfloat16), (args, kwargs))
            elif func in FP32:
                args, kwargs = tree_map(lambda t: self._cast(t, torch.float32), (args, kwargs))
        return func(*args, **kwargs)

    def _backward(self, loss: T, gradient: T | None = None, **_) -> None:
        grad = torch.ones_like(loss) if gradient is None else gradient
        with self:  # the engine itself, which does not come back to this handler
            Variable._execution_engine.run_backward((loss,), (grad,), False, False, (), True, True)

    def _cast(self, t, dtype: torch.dtype):
        if not isinstance(t, T) or not t.is_floating_point() or t.dtype in (dtype, torch.float64):
            return t
        if dtype == torch.bfloat16 and self.caching and t.is_leaf and t.requires_grad and not t._is_view():
            key = id(t)
            if key not in self._cache:
                self._cache[key] = (t, t.to(dtype))  # the source keeps its id from being reused
            return self._cache[key][1]
        return t.to(dtype)


def meta_peak(model: nn.Module, loss_fn: Callable[[], T], inputs: Sequence[T], flow: Flow) -> int:
    """Peak bytes of a forward + backward of ``loss_fn()`` on a meta ``model``, whose parameters must
    already have the flow's dtype, under the flow's autocast."""
    if not flow.autocast:
        return measure_step(model, loss_fn, inputs)["peak"]
    with CudaAutocast() as autocast:
        return measure_step(model, loss_fn, inputs, after_forward=autocast.end_forward)["peak"]
