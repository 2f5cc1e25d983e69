"""block_causal_attention against PyTorch's attention at B=2, H=8, N=1280, D=64 (--head-dim).

    python bench/attention.py [--device cpu|cuda] [--dtype float32] [--repeat 5] [--head-dim 64]
                              [--batch 2] [--heads 8] [--seq 1280]

Baselines, from one run: F.scaled_dot_product_attention with the dense boolean block-causal mask,
FlexAttention with the equivalent block mask (forward only on CPU, where it has no backward), and
SDPA with is_causal=True (about the same work, PyTorch's own tiled kernel). Prints milliseconds and
ratios (baseline time / ours, > 1 means we are faster). On CUDA it also prints TFLOP/s counting only
the unmasked work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table, timeit  # noqa: E402

from nbp_ext.ops import block_causal_attention, block_causal_mask  # noqa: E402

try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
except ImportError:  # older torch
    flex_attention = None


def unmasked_flops(mask: torch.Tensor, batch: int, heads: int, dim: int) -> float:
    """Forward FLOPs of the visible score entries: 2 matmuls x 2 flops x visible pairs x D."""
    return 4.0 * float(mask.sum()) * dim * batch * heads


def run_case(B, H, N, D, block, prefix, dtype, device, repeat, backward):
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    gen = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(B, H, N, D, generator=gen).to(device=device, dtype=dtype).requires_grad_(backward)
               for _ in range(3))
    g = torch.randn(B, H, N, D, generator=gen).to(device=device, dtype=dtype)
    mask = block_causal_mask(N, N, block, prefix, device=device)

    def fwd_bwd(f):
        def go():
            out = f()
            if backward:
                torch.autograd.grad(out, (q, k, v), g)
        return go

    ours = fwd_bwd(lambda: block_causal_attention(q, k, v, block, prefix))
    sdpa_mask = fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    sdpa_causal = fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    res = {
        "ours": timeit(ours, repeat=repeat, sync=sync),
        "sdpa_mask": timeit(sdpa_mask, repeat=repeat, sync=sync),
        "sdpa_causal": timeit(sdpa_causal, repeat=repeat, sync=sync),
    }
    flex_ok = flex_attention is not None and (device.type == "cuda" or not backward)
    if flex_ok:
        def mask_mod(b, h, qi, kj):
            qb = torch.where(qi < prefix, 0, 1 + (qi - prefix) // block)
            kb = torch.where(kj < prefix, 0, 1 + (kj - prefix) // block)
            return kb <= qb
        bm = create_block_mask(mask_mod, B=None, H=None, Q_LEN=N, KV_LEN=N, device=device.type)
        flex = torch.compile(flex_attention) if device.type == "cuda" else flex_attention
        res["flex"] = timeit(fwd_bwd(lambda: flex(q, k, v, block_mask=bm)), repeat=repeat, sync=sync)
    res["tflops"] = unmasked_flops(mask, B, H, D) * (3.5 if backward else 1.0) / (res["ours"] * 1e-3) / 1e12
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seq", type=int, default=1280)
    ap.add_argument("--head-dim", type=int, default=64, help="64; 32 for the tiny generators, 96 for the paper's 700M")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--heads", type=int, default=8,
                    help="8 by default; on a GPU, --batch 8 --heads 16 --seq 4096 fills the chip")
    args = ap.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    B, H, D, N = args.batch, args.heads, args.head_dim, args.seq
    cases = [(16, 0), (256, 0), (16, 256), (256, 256)]  # (block, prefix): rows and frames, w/o context
    print(f"machine: {machine()}")
    for backward in (False, True):
        rows = []
        for block, prefix in cases:
            r = run_case(B, H, N, D, block, prefix, dtype, device, args.repeat, backward)
            row = [block, prefix, r["ours"], r["sdpa_mask"], r["sdpa_causal"], r["sdpa_mask"] / r["ours"],
                   r["sdpa_causal"] / r["ours"]]
            row += [r["flex"], r["flex"] / r["ours"]] if "flex" in r else ["n/a", "n/a"]
            row.append(r["tflops"])
            rows.append(row)
        print_table(
            f"{'forward+backward' if backward else 'forward'}, B={B} H={H} N={N} D={D} {args.dtype} ({device.type})",
            ["block", "prefix", "ours ms", "SDPA mask ms", "SDPA causal ms", "vs SDPA mask", "vs SDPA causal",
             "Flex ms", "vs Flex", "ours TFLOP/s (unmasked)"],
            rows,
        )


if __name__ == "__main__":
    main()
