"""Block-causal attention: the public op, its fake and autograd registration, and the reference.

Visibility (docs/design.md): with blk(i) = 0 for i < prefix_len and 1 + (i - prefix_len) // block_size
otherwise, the query at absolute position q_offset + i sees key j iff blk(j) <= blk(q_offset + i).
"""

from __future__ import annotations

import math

import torch

from nbp_ext import _ext

MAX_HEAD_DIM = 256
# Positions are int64 in the kernels; bounding the last query's position keeps every sum the kernels
# form (position - prefix, block ends) far from overflow.
MAX_POSITION = 2**62
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def block_index(pos: torch.Tensor, block_size: int, prefix_len: int = 0) -> torch.Tensor:
    """Block of each absolute position: 0 inside the prefix, then 1, 2, ... every block_size positions."""
    return torch.where(pos < prefix_len, torch.zeros_like(pos), 1 + (pos - prefix_len).div(block_size, rounding_mode="floor"))


def block_causal_mask(
    q_len: int, k_len: int, block_size: int, prefix_len: int = 0, q_offset: int = 0, device=None
) -> torch.Tensor:
    """Dense boolean mask (q_len, k_len): True where the query may attend to the key."""
    qpos = torch.arange(q_len, device=device) + q_offset
    kpos = torch.arange(k_len, device=device)
    return block_index(kpos, block_size, prefix_len)[None, :] <= block_index(qpos, block_size, prefix_len)[:, None]


def block_causal_attention_ref(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int,
    prefix_len: int = 0,
    q_offset: int = 0,
    scale: float | None = None,
) -> torch.Tensor:
    """Dense-mask attention in the inputs' own dtype (cast them to float64 for a ground truth)."""
    h, hkv = q.shape[1], k.shape[1]
    if h != hkv:
        k = k.repeat_interleave(h // hkv, dim=1)  # (B, H, Nk, D)
        v = v.repeat_interleave(h // hkv, dim=1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    mask = block_causal_mask(q.shape[2], k.shape[2], block_size, prefix_len, q_offset, device=q.device)
    scores = (q @ k.transpose(-1, -2)) * scale  # (B, H, Nq, Nk)
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def not_supported_reasons(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_size: int = 1) -> list[str]:
    """Why the compiled kernel cannot run on these inputs (empty list: it can)."""
    reasons = []
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            reasons.append(f"{name} must have 4 dimensions (B, heads, N, D), got shape {tuple(t.shape)}")
        if t.dtype not in SUPPORTED_DTYPES:
            reasons.append(f"{name} dtype {t.dtype} is not one of float32, float16, bfloat16")
        if t.device != q.device:
            reasons.append(f"{name} is on {t.device} but q is on {q.device}")
    if reasons:
        return reasons
    if not (1 <= q.shape[-1] <= MAX_HEAD_DIM):
        reasons.append(f"head dim {q.shape[-1]} is outside [1, {MAX_HEAD_DIM}]")
    if k.shape[1] == 0 or q.shape[1] % k.shape[1] != 0:
        reasons.append(f"query heads {q.shape[1]} are not a multiple of key/value heads {k.shape[1]}")
    if block_size < 1:
        reasons.append(f"block_size must be >= 1, got {block_size}")
    if q.device.type == "cuda" and not _ext.build_info()["cuda"]:
        reasons.append("this build has no CUDA kernels: rebuild on a machine with nvcc and a CUDA build of torch")
    elif q.device.type not in ("cpu", "cuda"):
        reasons.append(f"device type {q.device.type} is not supported")
    return reasons


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, torch.SymInt)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def block_causal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int,
    prefix_len: int = 0,
    q_offset: int = 0,
    scale: float | None = None,
) -> torch.Tensor:
    """Attention where each query sees its own block, every earlier block and the prefix.

    q (B, H, Nq, D); k, v (B, Hkv, Nk, D) with H % Hkv == 0; query i sits at absolute position
    q_offset + i. Returns (B, H, Nq, D) in q's dtype. Differentiable in q, k and v.
    """
    if not _ext.loaded:
        _ext.load()
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a 4-D tensor (B, heads, N, D), got {getattr(t, 'shape', type(t))}")
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device} but q is on {q.device}: all tensors must be on one device")
    _check_int("block_size", block_size, 1)
    _check_int("prefix_len", prefix_len, 0)
    _check_int("q_offset", q_offset, 0)
    if q.shape[-1] < 1:
        raise ValueError(f"q, k, v must have a head size >= 1, got {q.shape[-1]}")
    if not isinstance(q_offset, torch.SymInt) and q_offset + q.shape[2] > MAX_POSITION:
        raise ValueError(f"q_offset + Nq (the last query's position + 1) must be <= 2^62, got {q_offset} + {q.shape[2]}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif not math.isfinite(float(scale)):
        raise ValueError(f"scale must be a finite number, got {scale}")
    if q.shape[0] == 0 or q.shape[1] == 0 or q.shape[2] == 0:  # nothing to attend: a defined, empty result
        if k.shape[0] != q.shape[0] or k.shape != v.shape:
            raise ValueError(f"k and v must have q's batch and one shape, got q {tuple(q.shape)}, k {tuple(k.shape)}, "
                             f"v {tuple(v.shape)}")
        return q * 0  # empty, and part of q's graph
    out, _ = torch.ops.nbp.attention_fwd(q, k, v, block_size, prefix_len, q_offset, float(scale))
    return out


def _register() -> None:
    @torch.library.register_fake("nbp::attention_fwd")
    def _fwd_fake(q, k, v, block_size, prefix_len, q_offset, scale):
        torch._check(q.dim() == 4 and k.dim() == 4 and v.dim() == 4, lambda: "q, k, v must be 4-D")
        out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        lse = torch.empty(q.shape[:3], dtype=torch.float32, device=q.device)
        return out, lse

    @torch.library.register_fake("nbp::attention_bwd")
    def _bwd_fake(dout, q, k, v, out, lse, block_size, prefix_len, q_offset, scale):
        return (
            torch.empty(q.shape, dtype=q.dtype, device=q.device),
            torch.empty(k.shape, dtype=k.dtype, device=k.device),
            torch.empty(v.shape, dtype=v.dtype, device=v.device),
        )

    def _setup_context(ctx, inputs, output):
        q, k, v, block_size, prefix_len, q_offset, scale = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.args = (block_size, prefix_len, q_offset, scale)
        ctx.mark_non_differentiable(lse)

    def _backward(ctx, dout, _dlse):
        q, k, v, out, lse = ctx.saved_tensors
        dq, dk, dv = torch.ops.nbp.attention_bwd(dout.contiguous(), q, k, v, out, lse, *ctx.args)
        return dq, dk, dv, None, None, None, None

    torch.library.register_autograd("nbp::attention_fwd", _backward, setup_context=_setup_context)
