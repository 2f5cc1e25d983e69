"""The generator's output head and loss, forward and backward: linear_cross_entropy against its baselines.

    python bench/head_loss.py [--device cpu|cuda] [--tokens 2560] [--dim 512] [--vocab 64000 1000]

Baselines, from one run: the plain head (``F.linear`` then ``F.cross_entropy``, holding the whole
(tokens, vocabulary) logits) and linear_cross_entropy with the former chunk rule (4 MB of logits per
chunk and no row floor: 16 rows with 64 000 codes). Prints milliseconds per forward+backward, the
peak extra memory on CUDA, and ratios (baseline time / ours, > 1 means ours is faster). The default
shape is the `small` generator's width and two clips of the paper's 5 x 16 x 16 grid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, timeit  # noqa: E402

from nbp_ext.models import head_loss  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tokens", type=int, default=2560, help="rows: clips x video tokens per clip")
    ap.add_argument("--dim", type=int, default=512, help="model width")
    ap.add_argument("--vocab", type=int, nargs="+", default=[64000, 1000])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: under autocast")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    rows = []
    for vocab in args.vocab:
        gen = torch.Generator().manual_seed(0)
        h = torch.randn(args.tokens, args.dim, generator=gen).to(device).requires_grad_()
        w = (torch.randn(vocab, args.dim, generator=gen) * 0.02).to(device).requires_grad_()
        t = torch.randint(0, vocab, (args.tokens,), generator=gen).to(device)

        def step(loss_fn):
            def go():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                    loss = loss_fn().mean()
                loss.backward()
                h.grad = w.grad = None
            return go

        def with_rule(**rule):
            """linear_cross_entropy with the module's chunk constants set to ``rule`` for the call."""
            def go():
                saved = {name: getattr(head_loss, name) for name in rule}
                for name, value in rule.items():
                    setattr(head_loss, name, value)
                try:
                    return head_loss.linear_cross_entropy(h, w, t)
                finally:
                    for name, value in saved.items():
                        setattr(head_loss, name, value)
            return go

        variants = {
            "plain head + cross_entropy": lambda: F.cross_entropy(F.linear(h, w).float(), t, reduction="none"),
            "chunks of 4 MB (former rule)": with_rule(CHUNK_ELEMENTS=1 << 20, CUDA_CHUNK_ELEMENTS=1 << 20,
                                                      MIN_CHUNK_ROWS=1),
            "linear_cross_entropy": with_rule(),
        }
        times, peaks = {}, {}
        for name, fn in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            times[name] = timeit(step(fn), warmup=2, repeat=args.repeat, sync=sync)
            peaks[name] = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else None
        ours = times["linear_cross_entropy"]
        for name, ms in times.items():
            rows.append([vocab, name, f"{ms:.1f}", "-" if peaks[name] is None else f"{peaks[name]:.0f}",
                         f"{ms / ours:.2f}"])
    print(machine())
    print_table(f"head + loss forward+backward, {args.tokens} tokens, width {args.dim}, {args.precision} ({device.type})",
                ["vocabulary", "variant", "ms", "peak extra MiB (cuda)", "time / linear_cross_entropy's"], rows)


if __name__ == "__main__":
    main()
