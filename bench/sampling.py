"""sample_block against a vectorised PyTorch top-k/top-p sampler (sort, cumsum, mask, multinomial).

    python bench/sampling.py [--device cpu|cuda] [--vocab 64000] [--rows 256 4096]

Prints milliseconds per call and the speed-up of sample_block over the baseline, from one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, timeit  # noqa: E402

from nbp_ext.ops import sample_block  # noqa: E402


def torch_sampler(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The usual vectorised PyTorch sampler: top-k (sorted), softmax, cumsum, top-p mask, multinomial."""
    x = logits.float() / temperature
    if top_k > 0:
        sorted_x, order = torch.topk(x, top_k, dim=-1)  # sorted descending
    else:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)
    probs = torch.softmax(sorted_x, dim=-1)
    cum = probs.cumsum(-1)
    sorted_x = sorted_x.masked_fill(cum - probs > top_p, float("-inf"))
    probs = torch.softmax(sorted_x, dim=-1)
    choice = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(*probs.shape[:-1], 1)
    return order.gather(-1, choice).squeeze(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--vocab", type=int, default=64000)
    ap.add_argument("--rows", type=int, nargs="+", default=[256, 4096], help="B*L values to time")
    ap.add_argument("--top-k", type=int, default=16000)
    ap.add_argument("--top-p", type=float, default=0.9)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    torch.manual_seed(0)
    rows_out = []
    for rows in args.rows:
        batch = max(1, rows // 16)
        logits = torch.randn(batch, rows // batch, args.vocab, device=device) * 3.0
        t_base = timeit(lambda: torch_sampler(logits, 1.0, args.top_k, args.top_p), repeat=args.repeat, sync=sync)
        t_ours = timeit(lambda: sample_block(logits, 0, 0, 1.0, args.top_k, args.top_p, check=False),
                        repeat=args.repeat, sync=sync)
        rows_out.append([rows, args.vocab, t_base, t_ours, t_base / t_ours])
    print(f"machine: {machine()}")
    print_table(
        f"sample_block vs PyTorch sampler ({device.type}, top-k {args.top_k}, top-p {args.top_p})",
        ["B*L", "V", "torch sort/cumsum/multinomial ms", "sample_block ms", "speed-up"],
        rows_out,
    )


if __name__ == "__main__":
    main()
