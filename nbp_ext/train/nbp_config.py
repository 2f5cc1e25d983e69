"""Options of the generator training stage (``python -m nbp_ext.train nbp``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..models.generator_config import CONDITIONS, NBP_SIZES, STARTS, STYLES
from .precision import PRECISIONS


@dataclass
class NBPTrainConfig:
    tokens: str | None = None  # token folder (with train/ and val/); default: the newest runs/tokenizer-*/tokens
    tokenizer: str | None = None  # tokenizer folder for sample videos; default: beside the tokens
    model: str = "tiny"
    style: str | None = None  # override the size's style
    block: str = "row"  # row (1,1,W'), frame (1,H',W'), token (1,1,1) or bt,bh,bw
    condition: str = "class"
    context_frames: int = 2
    cond_dropout: float = 0.1
    start: str = "learned"
    steps: int = 600
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup: int = 50
    grad_clip: float = 1.0
    eval_every: int = 200
    sample_every: int = 300
    ckpt_every: int = 100
    log_every: int = 10
    sample_cfg: float = 2.0
    sample_top_k: int = 16000
    sample_top_p: float = 0.9
    stop_at: int | None = None
    time_limit: float | None = None  # minutes: fewer than --steps where the machine needs it (time_budget.py)
    runs_root: str = "runs"
    run_dir: str | None = None
    resume: str | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 where the device computes it natively, else fp32
    compile: bool = False  # torch.compile the training step's loss (compiled.py)
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self):
        if self.model not in NBP_SIZES:
            raise ValueError(f"--model must be one of {sorted(NBP_SIZES)}, got {self.model!r}")
        if self.style is not None and self.style not in STYLES:
            raise ValueError(f"--style must be one of {STYLES}, got {self.style!r}")
        if self.condition not in CONDITIONS:
            raise ValueError(f"--condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"--time-limit must be > 0 minutes, got {self.time_limit}")


def parse_block(spec: str, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """'row' -> (1, 1, W'), 'frame' -> (1, H', W'), 'token' -> (1, 1, 1), 'bt,bh,bw' -> as given."""
    named = {"row": (1, 1, grid[2]), "frame": (1, grid[1], grid[2]), "token": (1, 1, 1)}
    if spec in named:
        return named[spec]
    try:
        block = tuple(int(x) for x in spec.split(","))
    except ValueError:
        block = ()
    if len(block) != 3:
        raise ValueError(f"--block must be row, frame, token or bt,bh,bw, got {spec!r}")
    return block


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = NBPTrainConfig()
    g = p.add_argument_group("data and model")
    g.add_argument("--tokens", default=None, help="token folder from python -m nbp_ext.tokenize (default: the newest runs/tokenizer-*/tokens)")
    g.add_argument("--tokenizer", default=None, help="tokenizer folder, to decode sample videos (default: the one that made the tokens)")
    g.add_argument("--model", choices=sorted(NBP_SIZES), default=d.model, help="named generator size")
    g.add_argument("--style", choices=STYLES, default=None, help="llama (RMSNorm, SwiGLU, rotary) or gpt2 (the paper's); default: the size's")
    g.add_argument("--block", default=d.block, help="block shape: row (default, one latent row), frame, token (NTP) or bt,bh,bw")
    g.add_argument("--condition", choices=CONDITIONS, default=d.condition, help="class labels, first latent frames, or none")
    g.add_argument("--context-frames", type=int, default=d.context_frames, help="latent frames given for --condition frames")
    g.add_argument("--cond-dropout", type=float, default=d.cond_dropout, help="share of clips trained with the null class (for guidance)")
    g.add_argument("--start", choices=STARTS, default=d.start,
                   help="first video block: a learned start block (one step) or hybrid (token by token, then blocks)")
    g = p.add_argument_group("optimization")
    g.add_argument("--steps", type=int, default=d.steps, help="optimizer steps in the whole run")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per micro-batch per process")
    g.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-batches per optimizer step")
    g.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW decay (not on norms, biases, embeddings)")
    g.add_argument("--warmup", type=int, default=d.warmup, help="linear warmup steps, then cosine decay")
    g.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    g = p.add_argument_group("run folder, logging, samples, checkpoints")
    g.add_argument("--eval-every", type=int, default=d.eval_every, help="held-out token loss every N steps")
    g.add_argument("--sample-every", type=int, default=d.sample_every, help="a grid of generated videos every N steps")
    g.add_argument("--ckpt-every", type=int, default=d.ckpt_every, help="checkpoint every N steps")
    g.add_argument("--log-every", type=int, default=d.log_every, help="TensorBoard scalars every N steps")
    g.add_argument("--sample-cfg", type=float, default=d.sample_cfg, help="guidance scale of the sample videos (class models)")
    g.add_argument("--sample-top-k", type=int, default=d.sample_top_k)
    g.add_argument("--sample-top-p", type=float, default=d.sample_top_p)
    g.add_argument("--stop-at", type=int, default=None, help="stop (with a checkpoint) at this step; --resume goes on")
    g.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="end training, with its closing evaluation, samples and checkpoint, within MIN minutes: "
                        "the stage times its steps and lowers --steps (the cosine schedule follows) where they "
                        "would not fit; never raises it")
    g.add_argument("--runs-root", default=d.runs_root, help="where new run folders are made")
    g.add_argument("--run-dir", default=None, help="use this run folder instead of a new runs/nbp-<time>")
    g.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint")
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N")
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: autocast in bfloat16 with fp32 weights; auto (default): bf16 where the GPU or CPU "
                        "has bf16 instructions, else fp32")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the training step's forward and backward: the first step compiles (about 35 s "
                        "for the tiny size on 2 CPU cores), later steps are 1.16x faster in fp32 on AVX2 and "
                        "1.05x in bf16 on AVX512-BF16 (bench/train_step.py); falls back to eager, with a "
                        "message, where compilation fails")
    g.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader worker processes")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
