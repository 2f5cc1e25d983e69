"""A sampler whose order is fixed by (seed, epoch) and that can start part-way into an epoch,
so a resumed run sees the same clips in the same order as an uninterrupted one."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Indices of a dataset of ``size`` items: shuffled per epoch (or in order), split across
    ``world_size`` ranks, skipping the first ``skip`` indices of this rank's share."""

    def __init__(self, size: int, shuffle: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.shuffle, self.seed = size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _share(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        per_rank = -(-self.size // self.world_size)
        order += order[: per_rank * self.world_size - self.size]  # pad so every rank gets as many
        return order[self.rank::self.world_size]

    def __iter__(self):
        return iter(self._share()[self.skip:])

    def __len__(self) -> int:
        return max(0, -(-self.size // self.world_size) - self.skip)
