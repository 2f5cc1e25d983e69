"""Rotary positions over the (t, h, w) latent-grid coordinates of each token.

The head dimension's rotation pairs are shared out equally between the three axes; pairs left
over (head_dim / 2 not divisible by 3) are not rotated.
"""

from __future__ import annotations

import torch


def rope_tables(coords: torch.Tensor, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (N, head_dim // 2) for coords (N, 3)."""
    pairs = head_dim // 2
    per_axis = pairs // 3
    freqs = theta ** (-torch.arange(per_axis, dtype=torch.float64) / max(per_axis, 1))  # (per_axis,)
    angles = [coords[:, i, None].double() * freqs[None, :] for i in range(3)]  # 3 x (N, per_axis)
    rest = torch.zeros(coords.shape[0], pairs - 3 * per_axis, dtype=torch.float64)
    angle = torch.cat([*angles, rest], dim=-1)  # (N, pairs)
    return angle.cos().float(), angle.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, n, head_dim) by the tables (n, head_dim // 2); an odd last channel is kept."""
    pairs = cos.shape[-1]
    x1, x2, tail = x[..., :pairs], x[..., pairs : 2 * pairs], x[..., 2 * pairs :]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos, tail], dim=-1)
