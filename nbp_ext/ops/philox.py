"""Philox4x32-10 in PyTorch integer arithmetic: the reference for csrc/kernels/philox.h."""

from __future__ import annotations

import torch

_MASK = 0xFFFFFFFF
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85


def _mulhilo(a: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    prod = a * m  # int64 wraps: its low 64 bits are exact
    return (prod >> 32) & _MASK, prod & _MASK


def philox4x32_10(counter: list[torch.Tensor], key: list[torch.Tensor]) -> list[torch.Tensor]:
    """Ten Philox rounds; counter (4 words) and key (2 words) are int64 tensors holding uint32 values."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return [c0, c1, c2, c3]


def sampling_uniform(seeds: torch.Tensor, offset: int, positions: torch.Tensor) -> torch.Tensor:
    """Uniform doubles in [0, 1) for every (row seed, position): seeds (B,), positions (L,) -> (B, L)."""
    seeds = seeds.to(torch.int64)[:, None]  # (B, 1)
    pos = positions.to(torch.int64)[None, :]  # (1, L)
    shape = torch.broadcast_shapes(seeds.shape, pos.shape)
    zeros = torch.zeros(shape, dtype=torch.int64, device=seeds.device)
    counter = [pos + zeros, zeros, zeros + (offset & _MASK), zeros + ((offset >> 32) & _MASK)]
    key = [(seeds & _MASK) + zeros, ((seeds >> 32) & _MASK) + zeros]
    x0, x1, _, _ = philox4x32_10(counter, key)
    bits = ((x0 >> 5) << 26) | (x1 >> 6)  # 53 random bits
    return bits.to(torch.float64) / float(1 << 53)
