"""A static, preallocated KV cache per layer (gpt-fast style): buffers written in place."""

from __future__ import annotations

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
