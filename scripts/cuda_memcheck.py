"""Runs every CUDA kernel once on small awkward shapes, for `compute-sanitizer` to watch:

    compute-sanitizer --tool memcheck python scripts/cuda_memcheck.py
    compute-sanitizer --tool racecheck python scripts/cuda_memcheck.py --quick

Attention forward and backward for each dtype and head-dim bucket (sizes not divisible by the tiles,
a prefix, a KV-cache step with q_offset, grouped KV heads) and the sampler with and without guidance.
Checks the results against the references too, so a kernel that writes nothing also fails.
"""

from __future__ import annotations

import argparse

import torch

from nbp_ext.ops import block_causal_attention, block_causal_attention_ref, sample_block, sample_block_ref


def attention_cases(quick: bool):
    dims = (17, 64) if quick else (16, 33, 64, 96, 128, 256)
    for dtype in (torch.float32, torch.bfloat16) if quick else (torch.float32, torch.float16, torch.bfloat16):
        for d in dims:
            # (B, H, Hkv, Nq, Nk, block, prefix, q_offset)
            yield dtype, d, (2, 4, 2, 37, 37, 16, 5, 0)
            yield dtype, d, (1, 2, 1, 16, 70, 16, 3, 54)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer cases (racecheck is slow)")
    args = ap.parse_args()
    worst = 0.0
    for dtype, d, (B, H, Hkv, Nq, Nk, block, prefix, q_off) in attention_cases(args.quick):
        gen = torch.Generator().manual_seed(d)
        q = torch.randn(B, H, Nq, d, generator=gen)
        k = torch.randn(B, Hkv, Nk, d, generator=gen)
        v = torch.randn(B, Hkv, Nk, d, generator=gen)
        g = torch.randn(B, H, Nq, d, generator=gen)
        leaves = [t.to("cuda", dtype).requires_grad_() for t in (q, k, v)]
        out = block_causal_attention(*leaves, block, prefix, q_off)
        grads = torch.autograd.grad(out, leaves, g.to("cuda", dtype))
        ref_leaves = [t.double().requires_grad_() for t in (q, k, v)]
        ref = block_causal_attention_ref(*ref_leaves, block, prefix, q_off)
        ref_grads = torch.autograd.grad(ref, ref_leaves, g.double())
        for got, want in zip([out, *grads], [ref, *ref_grads]):
            err = float((got.detach().double().cpu() - want.detach()).norm() / (want.detach().norm() + 1e-12))
            worst = max(worst, err)
            if not err < (1e-4 if dtype == torch.float32 else 2e-2):
                raise SystemExit(f"attention {dtype} D={d}: relative error {err:.2e}")
    gen = torch.Generator().manual_seed(0)
    for V, top_k, top_p, cfg in ((1000, 0, 0.9, None), (3001, 40, 1.0, 2.0), (64000, 16000, 0.9, None)):
        c = torch.randn(2, 16, V, generator=gen) * 2
        u = torch.randn(2, 16, V, generator=gen) * 2 if cfg else None
        got = sample_block(c.cuda(), 5, 3, 1.0, top_k, top_p, cfg, u.cuda() if u is not None else None)
        want = sample_block_ref(c, 5, 3, 1.0, top_k, top_p, cfg, u)
        if not torch.equal(got.cpu(), want):
            raise SystemExit(f"sampling V={V}: {int((got.cpu() != want).sum())} tokens differ from the reference")
    torch.cuda.synchronize()
    print(f"cuda_memcheck: all kernels ran; worst attention relative error {worst:.2e}; sampling equal to the reference")


if __name__ == "__main__":
    main()
