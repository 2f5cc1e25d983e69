"""Key/value caches of the generator's attention layers, two kinds behind one ``attend`` call:

- ``KVCache``: static, preallocated buffers written in place (gpt-fast style), for generation in
  Python.
- ``ExplicitCache``: caches as tensors in and the new keys and values out, for the exported graphs
  (the runtime owns the buffers): a prefill records its keys and values; a step attends to a
  fixed-length cache whose first ``position`` entries are valid (``cached_block_attention``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class KVCache(nn.Module):
    def __init__(self, batch: int, kv_heads: int, max_len: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device | str):
        super().__init__()
        shape = (batch, kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, pos: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, Hkv, n, D) at pos .. pos + n - 1; return the cache up to pos + n."""
        n = k.shape[2]
        if pos + n > self.k.shape[2]:
            raise ValueError(f"the cache holds {self.k.shape[2]} positions; writing {n} at {pos} overflows it")
        self.k[:, :, pos : pos + n] = k
        self.v[:, :, pos : pos + n] = v
        return self.k[:, :, : pos + n], self.v[:, :, : pos + n]

    def attend(self, attn, q, k, v, pos: int) -> torch.Tensor:
        """Write this block's keys and values, then attend to everything so far (in the cache's dtype)."""
        k, v = self.update(pos, k, v)
        return attn.block_causal(q.to(k.dtype), k, v, pos)


class ExplicitCache:
    """One layer's cache as tensors: ``past_k``/``past_v`` (R, Hkv, N, D) with ``position`` (1,) int64
    valid entries, or none (a prefill). ``attend`` keeps the new keys and values in ``k``/``v``."""

    def __init__(self, past_k: torch.Tensor | None = None, past_v: torch.Tensor | None = None,
                 position: torch.Tensor | None = None):
        self.past_k, self.past_v, self.position = past_k, past_v, position
        self.k = self.v = None

    def attend(self, attn, q, k, v, pos) -> torch.Tensor:
        self.k, self.v = k, v
        if self.past_k is None:  # prefill: the model's own block-causal attention
            return attn.block_causal(q, k, v, pos)
        return cached_block_attention(q, k, v, self.past_k, self.past_v, self.position)


def cached_block_attention(q, k_new, v_new, past_k, past_v, position, scale: float | None = None):
    """q (R, H, L, D), k_new/v_new (R, Hkv, L, D), past_k/past_v (R, Hkv, N, D), position (1,) int64
    -> (R, H, L, D): each query sees the cached keys before ``position`` and the whole new block.

    A block step's attention in standard ops, for static graphs (every cached key before
    ``position`` belongs to an earlier block or the prefix). The cache and the block are scored
    separately and joined in one softmax (a shared maximum, the two exponential sums added), so the
    graph never copies a cache; grouped query heads are folded into the query rows instead of
    repeating the keys and values. The softmax statistics are fp32 whatever the inputs' type; the
    probabilities meet the values in that type.
    """
    R, H, L, D = q.shape
    hkv, n = past_k.shape[1], past_k.shape[2]
    scale = 1.0 / math.sqrt(D) if scale is None else scale
    qg = q.reshape(R, hkv, (H // hkv) * L, D)  # (R, Hkv, G*L, D): head h reads kv head h // G
    dtype = q.dtype
    s_past = (qg @ past_k.transpose(-1, -2)).float() * scale  # (R, Hkv, G*L, N)
    s_past = s_past.masked_fill(torch.arange(n, device=q.device) >= position, float("-inf"))
    s_new = (qg @ k_new.transpose(-1, -2)).float() * scale  # (R, Hkv, G*L, L)
    mx = torch.maximum(s_past.amax(dim=-1, keepdim=True), s_new.amax(dim=-1, keepdim=True))
    e_past, e_new = torch.exp(s_past - mx), torch.exp(s_new - mx)
    total = e_past.sum(dim=-1, keepdim=True) + e_new.sum(dim=-1, keepdim=True)
    out = ((e_past.to(dtype) @ past_v).float() + (e_new.to(dtype) @ v_new).float()) / total  # (R, Hkv, G*L, D)
    return out.to(dtype).reshape(R, H, L, D)


def make_caches(model, batch: int, dtype: torch.dtype | None = None) -> nn.ModuleList:
    """One cache per layer, sized for the model's longest input.

    The cache takes the parameters' dtype, except for a bfloat16 model on the CPU: its cache is
    float32, because the CPU attention kernel computes in float32 and would otherwise convert the
    whole cache at every step (attention then runs in the cache's dtype)."""
    cfg = model.config
    param = next(model.parameters())
    if dtype is None and param.device.type == "cpu" and param.dtype in (torch.bfloat16, torch.float16):
        dtype = torch.float32
    return nn.ModuleList(
        KVCache(batch, cfg.n_kv_head, cfg.max_len, cfg.head_dim, dtype or param.dtype, param.device)
        for _ in range(cfg.n_layer)
    )
