"""The options every training stage shares (``LoopOptions``), and their command-line flags.

A stage's config is a dataclass that extends ``LoopOptions`` with its model and data options and
redeclares the defaults that differ for it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..data.loader import DEFAULT_LOADER_TIMEOUT, LoaderOptions, add_loader_arguments
from ..cli_errors import check_seconds
from .distributed import DEFAULT_DIST_TIMEOUT, add_dist_timeout_argument
from .parallel import PARALLEL
from .precision import PRECISIONS

# Options a resumed run takes from the command line; every other one comes from the checkpoint.
RUNTIME_OPTIONS = ("resume", "stop_at", "progress", "device", "num_workers", "worker_start", "loader_timeout",
                   "dist_timeout", "time_limit", "compile", "parallel", "activation_checkpointing", "async_checkpoint",
                   "keep_checkpoints")


@dataclass
class LoopOptions:
    steps: int = 600
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup: int = 50
    lr_floor: float = 0.1  # the cosine schedule ends at this share of the peak learning rate
    grad_clip: float = 1.0
    eval_every: int = 200
    sample_every: int = 300
    ckpt_every: int = 100
    log_every: int = 10
    stop_at: int | None = None
    time_limit: float | None = None  # minutes: fewer than --steps where the machine needs it (time_budget.py)
    runs_root: str = "runs"
    run_dir: str | None = None
    resume: str | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    num_workers: int | None = None  # None: as many as make sense for the data (data.builder.default_workers)
    worker_start: str | None = None  # data.loader.WORKER_STARTS; None: its default
    loader_timeout: float = DEFAULT_LOADER_TIMEOUT  # seconds the loader may go without a batch
    dist_timeout: float = DEFAULT_DIST_TIMEOUT  # seconds a collective (or the processes' start) may wait
    progress: bool = True
    parallel: str | None = None  # None: ddp with several processes
    activation_checkpointing: bool = False
    async_checkpoint: bool = False
    keep_checkpoints: int = 2

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.parallel is not None and self.parallel not in PARALLEL:
            raise ValueError(f"--parallel must be one of {PARALLEL}, got {self.parallel!r}")
        for name in ("steps", "batch_size", "grad_accum", "eval_every", "sample_every", "ckpt_every", "log_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"--time-limit must be > 0 minutes, got {self.time_limit}")
        if not 0 <= self.lr_floor <= 1:
            raise ValueError(f"lr_floor must be in [0, 1], got {self.lr_floor}")
        self.loader_options()  # checks the loader's options
        check_seconds("--dist-timeout", self.dist_timeout)

    def loader_options(self) -> LoaderOptions:
        return LoaderOptions(self.num_workers, self.worker_start, self.loader_timeout)


def add_loop_arguments(p: argparse.ArgumentParser, d: LoopOptions, stage: str, eval_what: str, sample_what: str) -> None:
    """The shared flags, with ``d``'s defaults; ``eval_what`` / ``sample_what`` describe the stage's
    evaluation and sample output in the help."""
    g = p.add_argument_group("optimization")
    g.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in the whole run")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per micro-batch per process")
    g.add_argument("--grad-accum", type=int, default=d.grad_accum,
                   help="micro-batches per optimizer step (gradients are reduced over the processes on the last one)")
    g.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW decay (not on norms and biases)")
    g.add_argument("--warmup", type=int, default=d.warmup, help="linear warmup steps, then cosine decay")
    g.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: autocast in bfloat16 (under fsdp on a GPU: bf16 parameters, fp32 gradient reduction, "
                        "fp32 master weights); auto (default): bf16 where the device has bf16 instructions")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the training step's forward and backward (falls back to eager, with a "
                        "message, where compilation fails)")
    g = p.add_argument_group("several processes and memory (torchrun)")
    g.add_argument("--parallel", choices=PARALLEL, default=d.parallel,
                   help="ddp: DistributedDataParallel; fsdp: FSDP2, parameters, gradients and optimizer state sharded "
                        "over the processes (default: ddp when torchrun starts several processes)")
    g.add_argument("--activation-checkpointing", action=argparse.BooleanOptionalAction,
                   default=d.activation_checkpointing,
                   help="keep only each block's (layer's) input in the forward pass and recompute it in the backward: "
                        "less memory for about a third more compute (python -m nbp_ext.plan shows how much)")
    g = p.add_argument_group("run folder, logging, checkpoints")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help=f"{eval_what} every N steps")
    g.add_argument("--sample-every", type=int, default=d.sample_every, help=f"{sample_what} every N steps")
    g.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint every N steps")
    g.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, metavar="K",
                   help="finished checkpoints kept in run/checkpoints (older ones are deleted)")
    g.add_argument("--async-checkpoint", action="store_true",
                   help="write checkpoints in the background while training goes on")
    g.add_argument("--log-every", type=int, default=d.log_every, help="TensorBoard and metrics.jsonl scalars every N steps")
    g.add_argument("--stop-at", type=int, default=None, help="stop (with a checkpoint) at this step; --resume goes on")
    g.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="end training, with its closing evaluation and checkpoint, within MIN minutes: the stage "
                        "times its steps and lowers --steps (the cosine schedule follows) where they would not fit; "
                        "never raises it")
    g.add_argument("--runs-root", default=d.runs_root, help="where new run folders are made")
    g.add_argument("--run-dir", default=None, help=f"use this run folder instead of a new runs/{stage}-<time>")
    g.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its latest finished checkpoint (any number of processes, "
                        "ddp or fsdp)")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N")
    add_dist_timeout_argument(g, d.dist_timeout)
    add_loader_arguments(g, d.loader_options())
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def config_from_args(config_class: type, args: argparse.Namespace):
    """A stage config from parsed flags; fields without a flag keep their defaults."""
    from dataclasses import MISSING, fields

    values = {}
    for f in fields(config_class):
        if hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
        elif f.default is MISSING:
            raise ValueError(f"{config_class.__name__}.{f.name} has no flag and no default")
    return config_class(**values)
