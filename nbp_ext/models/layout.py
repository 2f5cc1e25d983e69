"""BlockLayout: a latent grid cut into blocks, and the grid <-> block-major sequence permutation."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class BlockLayout:
    """A (T', H', W') latent grid cut into (bt, bh, bw) blocks.

    The sequence lists blocks in raster order and the tokens of a block in raster order inside it
    (block-major order). (1, 1, W') is one latent row, (1, H', W') a frame, (1, 1, 1) plain
    next-token prediction.
    """

    grid: tuple[int, int, int]
    block: tuple[int, int, int]

    def __post_init__(self):
        grid, block = tuple(int(g) for g in self.grid), tuple(int(b) for b in self.block)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "block", block)
        if len(grid) != 3 or len(block) != 3 or min(grid) < 1 or min(block) < 1:
            raise ValueError(f"grid and block must be three positive sizes, got grid {grid} and block {block}")
        if any(g % b for g, b in zip(grid, block)):
            raise ValueError(f"block {block} must divide the latent grid {grid} along every axis")

    @property
    def block_len(self) -> int:
        bt, bh, bw = self.block
        return bt * bh * bw

    @property
    def blocks_per_axis(self) -> tuple[int, int, int]:
        return tuple(g // b for g, b in zip(self.grid, self.block))

    @property
    def num_blocks(self) -> int:
        nt, nh, nw = self.blocks_per_axis
        return nt * nh * nw

    @property
    def seq_len(self) -> int:
        t, h, w = self.grid
        return t * h * w

    def to_sequence(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T', H', W') -> (B, N) in block-major order."""
        if codes.dim() != 4 or tuple(codes.shape[1:]) != self.grid:
            raise ValueError(f"codes must have shape (B, {', '.join(map(str, self.grid))}), got {tuple(codes.shape)}")
        B = codes.shape[0]
        (nt, nh, nw), (bt, bh, bw) = self.blocks_per_axis, self.block
        x = codes.reshape(B, nt, bt, nh, bh, nw, bw)  # (B, nt, bt, nh, bh, nw, bw)
        x = x.permute(0, 1, 3, 5, 2, 4, 6)  # (B, nt, nh, nw, bt, bh, bw): blocks, then tokens inside
        return x.reshape(B, self.seq_len)

    def to_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, N) in block-major order -> (B, T', H', W')."""
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise ValueError(f"tokens must have shape (B, {self.seq_len}), got {tuple(tokens.shape)}")
        B = tokens.shape[0]
        (nt, nh, nw), (bt, bh, bw) = self.blocks_per_axis, self.block
        x = tokens.reshape(B, nt, nh, nw, bt, bh, bw)  # (B, nt, nh, nw, bt, bh, bw)
        x = x.permute(0, 1, 4, 2, 5, 3, 6)  # (B, nt, bt, nh, bh, nw, bw)
        return x.reshape(B, *self.grid)

    def coords(self) -> torch.Tensor:
        """(N, 3) int64: the (t, h, w) grid coordinates of every sequence position."""
        t, h, w = (torch.arange(n) for n in self.grid)
        grid = torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1)  # (T', H', W', 3)
        per_axis = [self.to_sequence(grid[None, ..., i])[0] for i in range(3)]  # 3 x (N,)
        return torch.stack(per_axis, dim=-1)
