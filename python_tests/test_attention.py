"""block_causal_attention against a float64 dense-mask reference, on awkward shapes and all dtypes.

Tolerance rule: the kernel's error against float64 is at most twice the error of PyTorch's own
math in the same dtype, plus the rounding error of the output dtype.
"""

import math

import pytest
import torch

from nbp_ext.ops import block_causal_attention, block_causal_attention_ref, block_causal_mask

# (B, H, Hkv, Nq, Nk, D, block_size, prefix_len, q_offset)
SHAPES = [
    (1, 2, 2, 97, 97, 16, 16, 0, 0),     # N not a multiple of the block or the tile
    (2, 4, 2, 1, 1, 40, 16, 0, 0),       # N = 1, grouped heads
    (2, 4, 1, 130, 130, 64, 16, 5, 0),   # prefix, one KV head
    (1, 2, 2, 16, 100, 64, 16, 4, 84),   # decode step: the last block's queries against the cache
    (1, 4, 2, 33, 70, 128, 16, 6, 37),   # queries in the middle of the cache
    (2, 2, 2, 70, 70, 128, 1, 0, 0),     # block 1: plain causal
    (1, 2, 2, 50, 50, 64, 64, 0, 0),     # block >= N: full attention
    (1, 4, 2, 33, 33, 17, 4, 3, 0),      # odd head dim
    (2, 4, 2, 7, 150, 17, 8, 5, 120),    # narrow decode tile: 7 queries mid-block, odd head dim, 3 key tiles
    (1, 8, 8, 1, 300, 64, 1, 0, 299),    # next-token decode step against a long cache
    (2, 4, 4, 157, 157, 32, 12, 13, 0),  # head dim 32 (the tiny generators): 32-wide column panels
    (1, 2, 2, 16, 200, 96, 16, 8, 184),  # head dim 96 (the paper's 700M and 3B): 64 + 32 wide, decode step
    (1, 2, 1, 45, 45, 48, 8, 2, 0),      # head dim 48: 32 + 16 wide
]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def make_inputs(B, H, Hkv, Nq, Nk, D, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Nq, D, generator=gen).to(dtype)
    k = torch.randn(B, Hkv, Nk, D, generator=gen).to(dtype)
    v = torch.randn(B, Hkv, Nk, D, generator=gen).to(dtype)
    return q, k, v


def rounding_error(x: torch.Tensor, dtype: torch.dtype) -> float:
    return float((x + 0.3 - 0.3 - x).abs().max()) if dtype != torch.float32 else float(
        ((x.float() + 0.3 - 0.3) - x.float()).abs().max()
    )


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double() - b.detach().double()).abs().max())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d).split(".")[-1])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_and_gradients_match_reference(shape, dtype):
    B, H, Hkv, Nq, Nk, D, block, prefix, q_offset = shape
    q, k, v = make_inputs(B, H, Hkv, Nq, Nk, D, dtype)
    q64, k64, v64 = (t.double().requires_grad_() for t in (q, k, v))
    qp, kp, vp = (t.clone().requires_grad_() for t in (q, k, v))  # PyTorch math in the same dtype
    qo, ko, vo = (t.clone().requires_grad_() for t in (q, k, v))  # ours

    ref = block_causal_attention_ref(q64, k64, v64, block, prefix, q_offset)
    pt = block_causal_attention_ref(qp, kp, vp, block, prefix, q_offset)
    out = block_causal_attention(qo, ko, vo, block, prefix, q_offset)
    assert out.shape == (B, H, Nq, D) and out.dtype == dtype

    atol = 2 * rounding_error(ref.detach().to(dtype), dtype) + 1e-6
    assert max_err(out, ref) <= 2 * max_err(pt, ref) + atol

    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    grads_ref = torch.autograd.grad(ref, (q64, k64, v64), g.double())
    grads_pt = torch.autograd.grad(pt, (qp, kp, vp), g)
    grads = torch.autograd.grad(out, (qo, ko, vo), g)
    # A floor for gradients that are exactly 0 in PyTorch's own math (one visible key: dq = 0):
    # a few ulps of the largest gradient entry.
    g_scale = max(float(gr.abs().max()) for gr in grads_ref)
    for name, gr, gp, go in zip("qkv", grads_ref, grads_pt, grads):
        assert go.shape == gr.shape and go.dtype == dtype
        g_atol = 2 * rounding_error(gr.to(dtype), dtype) + 8 * torch.finfo(dtype).eps * g_scale
        assert max_err(go, gr) <= 2 * max_err(gp, gr) + g_atol, f"d{name}"


def test_invisible_keys_do_not_matter():
    """Changing keys and values after a query's block never changes that query's output."""
    q, k, v = make_inputs(1, 2, 2, 64, 64, 32, torch.float32)
    block, prefix = 16, 8
    out = block_causal_attention(q, k, v, block, prefix)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 40:] = torch.randn_like(k2[:, :, 40:]) * 10
    v2[:, :, 40:] = torch.randn_like(v2[:, :, 40:]) * 10
    out2 = block_causal_attention(q, k2, v2, block, prefix)
    # positions 0..39 are in blocks 0 (prefix) .. 2 (8..23, 24..39): they never see key 40+
    assert torch.equal(out[:, :, :40], out2[:, :, :40])
    assert not torch.equal(out[:, :, 40:], out2[:, :, 40:])


def test_block_one_equals_causal_sdpa():
    q, k, v = make_inputs(2, 4, 4, 45, 45, 32, torch.float32)
    ours = block_causal_attention(q, k, v, 1)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(ours, sdpa, atol=2e-6, rtol=1e-5)


def test_mask_matches_rule():
    m = block_causal_mask(7, 7, block_size=2, prefix_len=3)
    blk = [0, 0, 0, 1, 1, 2, 2]
    expect = torch.tensor([[blk[j] <= blk[i] for j in range(7)] for i in range(7)])
    assert torch.equal(m, expect)


def test_explicit_scale_and_noncontiguous_inputs():
    q, k, v = make_inputs(2, 2, 2, 20, 20, 24, torch.float32)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)  # non-contiguous strides, same values
    out = block_causal_attention(qt, k, v[..., :24], 4, 2, scale=0.3)
    ref = block_causal_attention_ref(q.double(), k.double(), v.double(), 4, 2, scale=0.3)
    assert max_err(out, ref) < 1e-5
    assert math.isclose(float(block_causal_attention(q, k, v, 4).sum()),
                        float(block_causal_attention(q, k, v, 4, scale=1 / math.sqrt(24)).sum()))


def test_opcheck():
    q, k, v = (t.requires_grad_() for t in make_inputs(2, 4, 2, 19, 19, 16, torch.float32))
    torch.library.opcheck(torch.ops.nbp.attention_fwd.default, (q, k, v, 4, 3, 0, 0.25))
    out, lse = torch.ops.nbp.attention_fwd(q.detach(), k.detach(), v.detach(), 4, 3, 0, 0.25)
    torch.library.opcheck(torch.ops.nbp.attention_bwd.default,
                          (torch.randn_like(out), q.detach(), k.detach(), v.detach(), out, lse, 4, 3, 0, 0.25))


def test_torch_compile_fullgraph_forward_and_backward():
    q, k, v = (t.requires_grad_() for t in make_inputs(1, 2, 2, 40, 40, 16, torch.float32))

    def f(q, k, v):
        return block_causal_attention(q, k, v, 8, prefix_len=4).square().sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss = compiled(q, k, v)
    grads = torch.autograd.grad(loss, (q, k, v))
    loss_eager = f(q, k, v)
    grads_eager = torch.autograd.grad(loss_eager, (q, k, v))
    torch.testing.assert_close(loss, loss_eager)
    for a, b in zip(grads, grads_eager):
        torch.testing.assert_close(a, b)
