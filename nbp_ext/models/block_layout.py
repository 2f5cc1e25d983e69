"""BlockLayout: a latent grid (T', H', W') cut into blocks (bt, bh, bw), and the permutation between
the grid and the block-major sequence (blocks in raster order, tokens in raster order inside a block).

(1, 1, W') is one latent row per block, (1, H', W') one frame, (1, 1, 1) plain next-token prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _triple(name: str, value) -> tuple[int, int, int]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three positive ints (t, h, w), got {value!r}") from None
    if len(out) != 3 or min(out) < 1:
        raise ValueError(f"{name} must be three positive ints (t, h, w), got {value!r}")
    return out


@dataclass(frozen=True)
class BlockLayout:
    grid: tuple[int, int, int]   # (T', H', W') latent grid
    block: tuple[int, int, int]  # (bt, bh, bw), dividing the grid along every axis

    def __post_init__(self):
        grid, block = _triple("grid", self.grid), _triple("block", self.block)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "block", block)
        bad = [axis for axis, g, b in zip("thw", grid, block) if g % b]
        if bad:
            raise ValueError(f"block {block} must divide the latent grid {grid} along every axis; "
                             f"it does not along {', '.join(bad)}")

    @property
    def block_len(self) -> int:
        """L = bt * bh * bw tokens per block."""
        return math.prod(self.block)

    @property
    def num_tokens(self) -> int:
        """N = T' * H' * W'."""
        return math.prod(self.grid)

    @property
    def blocks_per_axis(self) -> tuple[int, int, int]:
        return tuple(g // b for g, b in zip(self.grid, self.block))

    @property
    def num_blocks(self) -> int:
        return self.num_tokens // self.block_len

    def _check_codes(self, codes: torch.Tensor) -> None:
        if not isinstance(codes, torch.Tensor) or codes.dim() != 4 or tuple(codes.shape[1:]) != self.grid:
            shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(f"codes must have shape (B, {', '.join(map(str, self.grid))}), got {shape}")

    def to_sequence(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T', H', W') -> tokens (B, N) in block-major order."""
        self._check_codes(codes)
        B = codes.shape[0]
        (nt, nh, nw), (bt, bh, bw) = self.blocks_per_axis, self.block
        x = codes.reshape(B, nt, bt, nh, bh, nw, bw)  # (B, nt, bt, nh, bh, nw, bw)
        x = x.permute(0, 1, 3, 5, 2, 4, 6)  # (B, nt, nh, nw, bt, bh, bw): block index, then inside
        return x.reshape(B, self.num_tokens)  # (B, N)

    def to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (B, N) in block-major order -> codes (B, T', H', W')."""
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2 or tokens.shape[1] != self.num_tokens:
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise ValueError(f"tokens must have shape (B, {self.num_tokens}) for grid {self.grid}, got {shape}")
        B = tokens.shape[0]
        (nt, nh, nw), (bt, bh, bw) = self.blocks_per_axis, self.block
        x = tokens.reshape(B, nt, nh, nw, bt, bh, bw)  # (B, nt, nh, nw, bt, bh, bw)
        x = x.permute(0, 1, 4, 2, 5, 3, 6)  # (B, nt, bt, nh, bh, nw, bw)
        return x.reshape(B, *self.grid)  # (B, T', H', W')

    def coords(self, device=None) -> torch.Tensor:
        """(N, 3) int64 latent-grid coordinates (t, h, w) of every token, in sequence order."""
        t, h, w = torch.meshgrid(*(torch.arange(g, device=device) for g in self.grid), indexing="ij")
        grid = torch.stack([t, h, w], dim=-1)  # (T', H', W', 3)
        (nt, nh, nw), (bt, bh, bw) = self.blocks_per_axis, self.block
        x = grid.reshape(nt, bt, nh, bh, nw, bw, 3).permute(0, 2, 4, 1, 3, 5, 6)  # (nt, nh, nw, bt, bh, bw, 3)
        return x.reshape(self.num_tokens, 3)  # (N, 3)
