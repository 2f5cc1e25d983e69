"""Generator training throughput: fp32, bf16 autocast (``--precision``) and both through
``torch.compile`` (``--compile`` of the generator stage).

    python bench/train_step.py [--model tiny] [--grid 3 12 12] [--batch 16] [--device cpu] [--no-compile]

One optimizer step is the stage's own: ``model.loss`` (NBP shift, cross-entropy on video tokens)
under the precision's autocast, backward, gradient clipping and AdamW. Random tokens, class
condition. Prints ms per step, tokens/s and the bf16/fp32 ratio; the baseline is fp32 in the same
run. bf16 on a CPU needs bf16 instructions (AVX512-BF16 or AMX); without them it is skipped. The
compiled row's first step, which compiles, is timed apart and left out of its ms/step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, timeit  # noqa: E402

from nbp_ext.models import Generator  # noqa: E402
from nbp_ext.models.generator_config import generator_config_from_name  # noqa: E402
from nbp_ext.train.compiled import compiled_or_eager  # noqa: E402
from nbp_ext.train.precision import autocast, native_bf16  # noqa: E402
from nbp_ext.train.schedule import GENERATOR_BETAS, build_optimizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="named generator size")
    ap.add_argument("--grid", type=int, nargs=3, default=[3, 12, 12], help="latent grid T' H' W' (block: one row)")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="leave out the torch.compile row")
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    grid = tuple(args.grid)
    torch.manual_seed(0)
    model = Generator(generator_config_from_name(args.model, vocab_size=args.vocab, grid=grid, block=(1, 1, grid[2]),
                                                condition="class", num_classes=12)).to(device)
    opt = build_optimizer(model, 1e-4, 0.05, GENERATOR_BETAS)
    codes = torch.randint(0, args.vocab, (args.batch, *grid), device=device)
    labels = torch.randint(0, 12, (args.batch,), device=device)
    tokens = args.batch * grid[0] * grid[1] * grid[2]

    def step(precision: str, loss_fn) -> None:
        with autocast(precision, device):
            out = loss_fn(codes, labels)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    variants = [("fp32", "fp32", False), ("bf16", "bf16", False)]
    if args.compile:
        variants += [("fp32 + torch.compile", "fp32", True), ("bf16 + torch.compile", "bf16", True)]
    rows, base = [], None
    for name, precision, compiled in variants:
        if precision == "bf16" and not native_bf16(device):
            print(f"bf16 skipped: {device} has no bf16 instructions")
            continue
        loss_fn = compiled_or_eager(model.loss, compiled, warn=print)
        first = ""
        if compiled:  # the compiling step, timed on its own
            t0 = time.perf_counter()
            step(precision, loss_fn)
            if sync:
                sync()
            first = f"{time.perf_counter() - t0:.1f}"
        ms = timeit(lambda: step(precision, loss_fn), warmup=2, repeat=args.repeat, sync=sync)
        base = base or ms
        rows.append([name, f"{model.num_params() / 1e6:.2f}M", args.batch, f"{ms:.1f}", f"{tokens / ms * 1e3:.0f}",
                     f"{base / ms:.2f}", first])
    print(machine())
    print_table(f"generator training step, {args.model}, grid {grid}, vocabulary {args.vocab}",
                ["variant", "params", "batch", "ms/step", "tokens/s", "speed-up vs fp32", "first (compiling) step, s"], rows)


if __name__ == "__main__":
    main()
