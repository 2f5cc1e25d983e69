"""Finite scalar quantization (FSQ): each latent channel is bounded and rounded to a few levels.

A latent vector of ``len(levels)`` channels becomes one code; channel ``i`` takes ``levels[i]``
values, so the code book has ``prod(levels)`` entries and needs no learned embedding. The index of a
code is its mixed-radix number with channel 0 as the least significant digit.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class FSQ(nn.Module):
    """Quantize ``(..., C)`` latents with ``C = len(levels)`` channels to a grid of ``prod(levels)`` codes."""

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        levels = tuple(int(l) for l in levels)
        if not levels or any(l < 2 for l in levels):
            raise ValueError(f"levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = levels
        self.dim = len(levels)
        self.codebook_size = math.prod(levels)
        self.eps = eps
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int64), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.int64), persistent=False)

    # ---- continuous -> grid -------------------------------------------------------------
    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash ``z`` so that rounding gives exactly ``levels[i]`` integer values per channel."""
        levels = self._levels.to(z.dtype)
        half_l = (levels - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0).to(z.dtype)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z + shift) * half_l - offset

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z (..., C)`` -> (quantized values in [-1, 1] with a straight-through gradient, indices (...))."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"z must have {self.dim} channels in its last dimension, got shape {tuple(z.shape)}")
        bounded = self.bound(z.float())
        rounded = bounded + (torch.round(bounded) - bounded).detach()  # straight-through estimator
        half_width = (self._levels // 2).to(rounded.dtype)
        quantized = rounded / half_width
        return quantized.to(z.dtype), self.codes_to_indices(quantized)

    # ---- grid <-> index -----------------------------------------------------------------
    def _scale(self, quantized: torch.Tensor) -> torch.Tensor:
        """Normalized values -> digits in ``0..levels[i]-1``."""
        half_width = self._levels // 2
        return torch.round(quantized.float() * half_width + half_width).to(torch.int64)

    def _unscale(self, digits: torch.Tensor) -> torch.Tensor:
        half_width = self._levels // 2
        return (digits - half_width).float() / half_width

    def codes_to_indices(self, quantized: torch.Tensor) -> torch.Tensor:
        """Quantized values ``(..., C)`` -> indices ``(...)`` int64 in ``[0, codebook_size)``."""
        return (self._scale(quantized) * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Indices ``(...)`` -> quantized values ``(..., C)`` float32."""
        if indices.dtype.is_floating_point:
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}")
        if indices.numel() and indices.device.type != "meta" and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(
                f"indices must lie in [0, {self.codebook_size}), got min {int(indices.min())} max {int(indices.max())}"
            )
        digits = (indices.long().unsqueeze(-1) // self._basis) % self._levels  # (..., C)
        return self._unscale(digits)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, codebook_size={self.codebook_size}"
