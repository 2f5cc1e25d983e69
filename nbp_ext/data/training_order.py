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


class TrainingOrder(Sampler[int]):
    """The training clips of one process, in an order fixed by (seed, epoch) and by the position in
    the epoch counted in clips over all processes, so that a run resumed on another number of
    processes continues the same sequence of global batches.

    Each micro-batch step takes the next ``world_size * batch_size`` clips of the epoch's
    permutation; process ``rank`` gets every ``world_size``-th of them, so the union of the ranks'
    micro-batches is always one contiguous window, whatever ``world_size`` is. An epoch ends when
    fewer than a full window are left (those clips wait for the next epoch's shuffle)."""

    def __init__(self, size: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need batch_size >= 1 and 0 <= rank < world_size, got {batch_size}, {rank}, {world_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.consumed = 0, 0

    @property
    def window(self) -> int:
        """Clips per micro-batch step over all processes."""
        return self.batch_size * self.world_size

    def batches_per_epoch(self) -> int:
        return self.size // self.window

    def set_position(self, epoch: int, consumed: int) -> None:
        """Start at clip ``consumed`` (counted over all processes) of epoch ``epoch``."""
        if consumed < 0 or consumed > self.size:
            raise ValueError(f"consumed must be in [0, {self.size}], got {consumed}")
        self.epoch, self.consumed = epoch, consumed

    def _order(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self):
        steps = (self.size - self.consumed) // self.window
        rest = self._order()[self.consumed:self.consumed + steps * self.window]
        return iter(rest[self.rank::self.world_size])

    def __len__(self) -> int:
        return (self.size - self.consumed) // self.window * self.batch_size
