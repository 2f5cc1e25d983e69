"""Data parallelism of the training stages: ``--parallel ddp|fsdp`` and ``--activation-checkpointing``.

- ``ddp``: ``DistributedDataParallel``; every process holds the whole model, gradients are
  all-reduced in buckets overlapping the backward pass.
- ``fsdp``: FSDP2 (``fully_shard``) on each unit the model names (``model.fsdp_units()``: the
  generator's transformer blocks, the tokenizer's layers) and on the model as the root: parameters,
  gradients and optimizer state are sharded over the processes, a unit's parameters are gathered
  just before its forward and backward. On a GPU with ``--precision bf16`` its mixed-precision
  policy computes in bf16 and reduces gradients in fp32 over fp32 master weights.

Both work on CPUs with gloo. Accumulation (``--grad-accum``) reduces gradients only on the last
micro-batch of a step (``grad_sync``). One process trains the plain model.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard, register_fsdp_forward_method
from torch.nn.parallel import DistributedDataParallel

from .distributed import DistInfo

PARALLEL = ("ddp", "fsdp")


class MethodCall(nn.Module):
    """Calls ``method`` of ``model`` as its forward, so that DDP sees the call (``model.loss``)."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args, **kwargs):
        return getattr(self.model, self.method)(*args, **kwargs)


def resolve_parallel(choice: str | None, info: DistInfo) -> str:
    """``--parallel``: None -> ddp with several processes; one process trains the plain model ("none")."""
    if choice is not None and choice not in PARALLEL:
        raise ValueError(f"--parallel must be one of {PARALLEL}, got {choice!r}")
    if not info.enabled:
        return "none"
    return choice or "ddp"


@dataclass
class Parallel:
    """A model prepared for training on ``info``'s processes. ``call`` is the training step's entry
    (``method`` of the model, through DDP or FSDP's hooks)."""

    model: nn.Module
    mode: str  # "none", "ddp" or "fsdp"
    info: DistInfo
    call: Callable
    _ddp: DistributedDataParallel | None = field(default=None, repr=False)
    _plain_class: type | None = field(default=None, repr=False)

    @contextlib.contextmanager
    def grad_sync(self, enabled: bool):
        """Reduce gradients in this backward pass only when ``enabled`` (the last micro-batch)."""
        if self.mode == "ddp" and not enabled:
            with self._ddp.no_sync():
                yield
        elif self.mode == "fsdp":
            self.model.set_requires_gradient_sync(enabled)
            yield
        else:
            yield

    def full_state(self) -> dict | None:
        """The whole model's weights on the main process's CPU, gathered from the shards under fsdp
        (every process calls this; None on the others)."""
        if self.mode == "fsdp":
            state = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        else:
            state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()} if self.info.is_main else None
        return state if self.info.is_main else None

    def plain_model(self) -> nn.Module | None:
        """On the main process, a model that evaluation and sampling can use alone: the model itself, or
        under fsdp an unsharded copy with the current weights (every process calls this)."""
        if self.mode != "fsdp":
            return self.model if self.info.is_main else None
        state = self.full_state()
        if not self.info.is_main:
            return None
        copy = self._plain_class(self.model.config)
        copy.load_state_dict(state)
        return copy.to(self.info.device).train(self.model.training)


def parallelize(model: nn.Module, mode: str, info: DistInfo, method: str = "forward", precision: str = "fp32",
                activation_checkpointing: bool = False) -> Parallel:
    """Prepare ``model`` (already on ``info.device``, the same initial weights on every process) for
    ``mode`` ("none", "ddp", "fsdp"); the training step calls ``parallel.call(...)``, which runs
    ``model.<method>``."""
    if activation_checkpointing:
        if not hasattr(model, "set_activation_checkpointing"):
            raise ValueError(f"--activation-checkpointing: {type(model).__name__} does not support it")
        model.set_activation_checkpointing(True)
    # forward goes through __call__, where module hooks (FSDP's gathering among them) run
    entry = (lambda m: m) if method == "forward" else (lambda m: getattr(m, method))
    if mode == "none":
        return Parallel(model, mode, info, entry(model))
    if mode == "ddp":
        ddp = DistributedDataParallel(MethodCall(model, method), device_ids=[info.device] if info.device.type == "cuda" else None)
        return Parallel(model, mode, info, ddp, _ddp=ddp)
    if mode != "fsdp":
        raise ValueError(f"parallel mode must be none, ddp or fsdp, got {mode!r}")
    plain_class = type(model)
    policy = MixedPrecisionPolicy()
    if precision == "bf16" and info.device.type == "cuda":
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    units = model.fsdp_units() if hasattr(model, "fsdp_units") else []
    for unit in units:
        fully_shard(unit, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    if method != "forward":
        register_fsdp_forward_method(model, method)
    assert isinstance(model, FSDPModule)
    return Parallel(model, mode, info, entry(model), _plain_class=plain_class)
