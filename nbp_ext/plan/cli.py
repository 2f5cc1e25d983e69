"""``python -m nbp_ext.plan``: the command line of the memory plan."""

from __future__ import annotations

import argparse
import json
import sys

from .flow import PRECISIONS
from .memory import GIB, HEADROOM, RESERVE_GIB, STAGES, Plan, PlanSpec, make_plan

DESCRIPTION = """\
Per-GPU memory of a training run of the NBP generator or the video tokenizer under DDP and FSDP,
with and without activation checkpointing, and the largest micro-batch per GPU that fits.
Counts come from the real model built on the meta device (no memory, no GPU needed)."""

EPILOG = f"""\
columns: ddp and fsdp data parallelism, each without and with activation checkpointing (+ckpt:
model.set_activation_checkpointing(True), each generator block or tokenizer layer recomputed in
the backward pass).

rows (GiB per GPU; P parameters, N GPUs, AdamW):
  parameters        DDP: fp32 4P. FSDP: fp32 shard 4P/N; with bf16 these are the master
                    weights and MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)
                    gathers bf16 copies.
  gradients         DDP: fp32 .grad 4P plus the reducer's fp32 buckets 4P (DDP's default
                    gradient_as_bucket_view=False keeps both). FSDP: fp32 shard 4P/N.
  optimizer state   AdamW's two fp32 moments: 8P (DDP), 8P/N (FSDP).
  gathered          FSDP only (fully_shard on each model.fsdp_units() and the root): the root's
                    unsharded parameters and gradients, two of the largest unit's unsharded
                    parameters (running and prefetched), its unsharded gradients and their
                    fp32 copy for the reduce-scatter.
  activations       peak of what the forward keeps for the backward plus the backward's
                    temporaries, at --batch-size clips. DDP with bf16 runs under autocast over
                    fp32 weights: the bf16 weight copies autocast keeps are counted here.
                    Generator: a per-layer formula (attention, MLP, norms, residuals, and the
                    chunked head + cross-entropy of linear_cross_entropy at the GPU's chunk).
                    Tokenizer: a run of the model on the meta device with CUDA autocast's casts,
                    L1 reconstruction loss only (no perceptual loss, no GAN).
                    With checkpointing (ckpt): block/layer inputs plus one recomputed block.
  optimizer step    foreach AdamW's temporary, one fp32 tensor per parameter (shard).
  peak              parameters + gradients + optimizer + the larger of (gathered + activations)
                    and the optimizer step's temporary (activations are freed before the step).
  max micro-batch   the most clips per GPU per step whose peak fits in the usable memory
                    (0: not even one). Usable = --gpu-memory less {HEADROOM:.0%} (allocator
                    fragmentation) less {RESERVE_GIB:.2f} GiB (CUDA context, cuBLAS and NCCL buffers).

example: python -m nbp_ext.plan --model 3B --gpus 8 --gpu-memory 80"""


class Parser(argparse.ArgumentParser):
    """Errors as one line, ``error: ...``, with exit code 2 (no usage dump, no traceback)."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of GiB, got {text!r}")
    return value


def grid_arg(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        grid = tuple(int(p) for p in parts)
    except ValueError:
        grid = ()
    if len(grid) != 3 or min(grid) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive integers T,H,W (e.g. 5,16,16), got {text!r}")
    return grid


def build_parser() -> Parser:
    d = PlanSpec()
    p = Parser(prog="python -m nbp_ext.plan", description=DESCRIPTION, epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=STAGES, default=d.stage, help="which model to plan for (default: %(default)s)")
    p.add_argument("--model", required=True, metavar="NAME",
                   help=f"named size; generator: {', '.join(model_names('generator'))}; "
                        f"tokenizer: {', '.join(model_names('tokenizer'))}")
    p.add_argument("--gpus", type=positive_int, default=1, metavar="N",
                   help="GPUs, one data-parallel rank each (default: %(default)s)")
    p.add_argument("--gpu-memory", type=positive_float, default=80.0, metavar="GIB",
                   help="memory of one GPU in GiB (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, metavar="N",
                   help="micro-batch per GPU (clips) for the activation and peak rows (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: DDP keeps fp32 parameters under bf16 autocast, FSDP gathers bf16 parameters "
                        "(fp32 master shards, fp32 reduce); fp32: everything fp32 (default: %(default)s)")
    g = p.add_argument_group("generator")
    g.add_argument("--grid", type=grid_arg, default=d.grid, metavar="T,H,W",
                   help="latent grid of a clip; blocks are latent rows (1,1,W), the condition a class "
                        "token (101 classes) (default: 5,16,16)")
    g.add_argument("--vocab", type=positive_int, default=d.vocab, metavar="V",
                   help="codes in the vocabulary (default: %(default)s)")
    g = p.add_argument_group("tokenizer")
    g.add_argument("--frames", type=positive_int, default=d.frames, metavar="F",
                   help="frames per clip, 1 + 4k (default: %(default)s)")
    g.add_argument("--size", type=positive_int, default=d.size, metavar="S",
                   help="clip height and width in pixels (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (bytes) instead of the table")
    return p


def model_names(stage: str) -> list[str]:
    if stage == "generator":
        from ..models.generator_config import GENERATOR_SIZES  # noqa: PLC0415
        return list(GENERATOR_SIZES)
    from ..models.tokenizer_config import TOKENIZER_SIZES  # noqa: PLC0415
    return list(TOKENIZER_SIZES)


def format_table(plan: Plan) -> str:
    spec, c = plan.spec, plan.counts

    def gib(b: int) -> str:
        return f"{b / GIB:.2f}"

    lines = [plan.description,
             f"{c.params / 1e6:,.2f}M parameters; FSDP units: {c.units}, the largest {c.largest_unit / 1e6:,.2f}M, "
             f"root {c.root / 1e6:,.2f}M",
             f"{spec.gpus} GPU{'s' if spec.gpus > 1 else ''} x {spec.gpu_memory_gib:.2f} GiB: "
             f"{spec.usable_bytes / GIB:.2f} GiB usable per GPU (less {HEADROOM:.0%} and {RESERVE_GIB:.2f} GiB); "
             f"micro-batch {spec.batch_size} per GPU", ""]
    rows = [("parameters", lambda r: gib(r.params)), ("gradients", lambda r: gib(r.grads)),
            ("optimizer state", lambda r: gib(r.optimizer)), ("gathered (FSDP)", lambda r: gib(r.gathered)),
            (f"activations (batch {spec.batch_size})", lambda r: gib(r.activations)),
            ("optimizer step temp", lambda r: gib(r.step_temp)),
            (f"peak (batch {spec.batch_size})", lambda r: gib(r.total)),
            (f"fits in {spec.usable_bytes / GIB:.2f}", lambda r: "yes" if r.total <= spec.usable_bytes else "no"),
            ("max micro-batch", lambda r: str(r.max_batch))]
    label_w = max(len(label) for label, _ in rows) + 2
    col_w = max(10, *(len(r.name) + 2 for r in plan.rows))
    lines.append("GiB per GPU".ljust(label_w) + "".join(r.name.rjust(col_w) for r in plan.rows))
    for label, value in rows:
        lines.append(label.ljust(label_w) + "".join(value(r).rjust(col_w) for r in plan.rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = model_names(args.stage)
    if args.model not in names:
        parser.error(f"argument --model: expected one of {', '.join(names)} for the {args.stage}, got {args.model!r}")
    try:
        spec = PlanSpec(stage=args.stage, model=args.model, gpus=args.gpus, gpu_memory_gib=args.gpu_memory,
                        batch_size=args.batch_size, precision=args.precision, grid=args.grid, vocab=args.vocab,
                        frames=args.frames, size=args.size)
        if spec.usable_bytes <= 0:
            raise ValueError(f"--gpu-memory must leave room after {HEADROOM:.0%} headroom and {RESERVE_GIB:.2f} GiB "
                             f"reserve (more than {RESERVE_GIB / (1 - HEADROOM):.2f} GiB), got {spec.gpu_memory_gib}")
        plan = make_plan(spec)
    except ValueError as err:
        parser.error(str(err))
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_table(plan))
    return 0
