"""Per-GPU memory of a training run under DDP and FSDP, with and without activation checkpointing.

Parameter counts come from the real model built on the meta device. Per GPU, for P parameters on
N GPUs (AdamW, two fp32 moments per parameter):

DDP    parameters 4P (fp32: autocast makes bf16 copies for the matmuls, counted with the
       activations); gradients 4P in .grad + 4P in the reducer's buckets (DDP's default
       gradient_as_bucket_view=False keeps both); optimizer 8P; the step's temporary 4P (foreach
       AdamW's sqrt of the second moments).
FSDP   fully_shard on each of ``model.fsdp_units()`` and the root: parameters 4P/N (fp32: with bf16
       they are the master weights, gathered as bf16 by MixedPrecisionPolicy), gradients 4P/N
       (reduce_dtype fp32), optimizer 8P/N, step temporary 4P/N; plus the gathered working set: the
       root's unsharded parameters and gradients (held through the step), the largest unit's
       unsharded parameters twice (the one running and the one prefetched), its unsharded
       gradients, and their fp32 copy for the reduce-scatter when the parameters are bf16.

The peak of a step is parameters + gradients + optimizer + the larger of (gathered + activations)
during forward/backward and the optimizer step's temporary (activations are freed by then).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from torch import nn

from .flow import FP32_BYTES, PRECISIONS, STRATEGIES, Flow, flow_for

GIB = 1 << 30
STAGES = ("generator", "tokenizer")
HEADROOM = 0.10  # share of the GPU left to the caching allocator's fragmentation
RESERVE_GIB = 2.0  # CUDA context, cuBLAS/cuDNN workspaces and NCCL buffers
MAX_SEARCH_BATCH = 1 << 20


@dataclass(frozen=True)
class PlanSpec:
    """What to plan for; the command's options."""

    stage: str = "generator"
    model: str = "3B"
    gpus: int = 8
    gpu_memory_gib: float = 80.0
    batch_size: int = 1
    precision: str = "bf16"
    grid: tuple[int, int, int] = (5, 16, 16)  # generator: latent (T', H', W')
    vocab: int = 64000  # generator: codes
    frames: int = 17  # tokenizer: clip frames, 1 + 4k
    size: int = 128  # tokenizer: clip height and width

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"--stage must be one of {STAGES}, got {self.stage!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.gpus < 1:
            raise ValueError(f"--gpus must be an integer >= 1, got {self.gpus}")
        if not self.gpu_memory_gib > 0:
            raise ValueError(f"--gpu-memory must be a positive number of GiB, got {self.gpu_memory_gib}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be an integer >= 1, got {self.batch_size}")

    @property
    def usable_bytes(self) -> int:
        """What a step may use of one GPU: less the headroom share and the fixed reserve."""
        return int(self.gpu_memory_gib * GIB * (1 - HEADROOM) - RESERVE_GIB * GIB)


@dataclass(frozen=True)
class ModelCounts:
    """Parameters of the model, of the FSDP root (what no unit holds) and of the largest unit."""

    params: int
    root: int
    largest_unit: int
    units: int

    @classmethod
    def from_model(cls, model: nn.Module) -> "ModelCounts":
        units = [sum(p.numel() for p in u.parameters()) for u in model.fsdp_units()]
        total = sum(p.numel() for p in model.parameters())
        return cls(params=total, root=total - sum(units), largest_unit=max(units, default=0), units=len(units))


@dataclass
class Row:
    """One strategy with or without activation checkpointing: bytes per GPU."""

    strategy: str
    checkpointing: bool
    params: int
    grads: int
    optimizer: int
    gathered: int
    step_temp: int
    activations: int  # at the planned micro-batch
    total: int  # at the planned micro-batch
    max_batch: int  # largest micro-batch per GPU that fits (0: not even one clip)

    @property
    def name(self) -> str:
        return self.strategy + ("+ckpt" if self.checkpointing else "")


@dataclass
class Plan:
    spec: PlanSpec
    counts: ModelCounts
    description: str
    rows: list[Row] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"spec": asdict(self.spec), "description": self.description, "counts": asdict(self.counts),
                "usable_bytes": self.spec.usable_bytes, "headroom": HEADROOM, "reserve_bytes": int(RESERVE_GIB * GIB),
                "rows": [{"name": r.name, **asdict(r)} for r in self.rows]}


def state_bytes(strategy: str, counts: ModelCounts, gpus: int, flow: Flow) -> dict[str, int]:
    """Parameters, gradients, optimizer state, gathered working set and step temporary per GPU."""
    P = counts.params
    if strategy == "ddp":
        return {"params": 4 * P, "grads": 8 * P, "optimizer": 8 * P, "gathered": 0, "step_temp": 4 * P}
    shard = -(-P // gpus)
    p = flow.param
    reduce_copy = FP32_BYTES if p != FP32_BYTES else 0  # bf16 gradients cast to fp32 for the reduce-scatter
    gathered = counts.root * 2 * p + counts.largest_unit * (3 * p + reduce_copy)
    return {"params": 4 * shard, "grads": 4 * shard, "optimizer": 8 * shard, "gathered": gathered,
            "step_temp": 4 * shard}


def peak_bytes(state: dict[str, int], activations: int) -> int:
    fixed = state["params"] + state["grads"] + state["optimizer"]
    return fixed + max(state["gathered"] + activations, state["step_temp"])


def max_batch(state: dict[str, int], activations: Callable[[int], int], usable: int) -> int:
    """Largest micro-batch whose peak fits in ``usable`` bytes (activations grow with the batch)."""
    def fits(b: int) -> bool:
        return peak_bytes(state, activations(b)) <= usable

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= MAX_SEARCH_BATCH and fits(hi):
        lo, hi = hi, hi * 2
    if hi > MAX_SEARCH_BATCH:
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def make_plan(spec: PlanSpec) -> Plan:
    """The four rows (ddp/fsdp x without/with activation checkpointing) for ``spec``."""
    from .models import build  # noqa: PLC0415  (imports the models, which load the compiled ops)

    model, description, activation_fn = build(spec)
    counts = ModelCounts.from_model(model)
    plan = Plan(spec=spec, counts=counts, description=description)
    for strategy in STRATEGIES:
        flow = flow_for(strategy, spec.precision)
        state = state_bytes(strategy, counts, spec.gpus, flow)
        for checkpointing in (False, True):
            acts = activation_fn(flow, checkpointing)
            at_batch = acts(spec.batch_size)
            fit = max_batch(state, acts, spec.usable_bytes)
            plan.rows.append(Row(strategy=strategy, checkpointing=checkpointing, **state, activations=at_batch,
                                 total=peak_bytes(state, at_batch), max_batch=fit))
    return plan


__all__ = ["GIB", "HEADROOM", "RESERVE_GIB", "ModelCounts", "Plan", "PlanSpec", "Row", "make_plan"]
