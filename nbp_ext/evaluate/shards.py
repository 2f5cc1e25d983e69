"""Splitting the evaluation over ``torchrun`` processes: each takes a contiguous share of every set of
videos (so video i keeps its seed), and the main process gathers the rows of every share in order."""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..train.distributed import DistInfo


def share(n: int, info: DistInfo) -> tuple[int, int]:
    """The [lo, hi) of ``n`` items this process takes: contiguous, sizes differing by at most one."""
    return n * info.rank // info.world_size, n * (info.rank + 1) // info.world_size


def gather_rows(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Every process's rows (n_r, ...) concatenated in rank order (sum n_r, ...); the shares may differ
    in size, so each is padded to the largest for ``all_gather`` and cut back after."""
    if not info.enabled:
        return t
    dev = info.device  # gloo takes CPU tensors, nccl CUDA ones
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(info.world_size)]
    dist.all_gather(sizes, torch.tensor([t.shape[0]], dtype=torch.int64, device=dev))
    sizes = [int(s) for s in sizes]
    padded = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=dev)
    padded[: t.shape[0]] = t.to(dev)
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:n].cpu() for p, n in zip(parts, sizes)])
