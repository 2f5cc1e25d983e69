"""Several processes (``torchrun``): set up from the environment, reduce metrics, main-process checks.

Every wait among the processes is bounded by ``timeout`` (``--dist-timeout``): the start, where a
process that never joins ends the others with an error naming how many joined, and every
collective, where a peer that is stuck or gone ends the rest with gloo's or NCCL's timeout error
(torchrun then stops the job). The bound sits above the longest time the other processes wait
for the main one alone (its evaluation, samples and checkpoint writes).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

DEFAULT_DIST_TIMEOUT = 1800.0  # seconds


def add_dist_timeout_argument(g: argparse._ArgumentGroup, default: float = DEFAULT_DIST_TIMEOUT) -> None:
    """``--dist-timeout SEC`` (dest ``dist_timeout``), for every command that runs under torchrun."""
    g.add_argument("--dist-timeout", type=float, default=default, metavar="SEC",
                   help="under torchrun: end with an error when the processes' start or a collective (a peer stuck "
                        f"or gone) waits longer than SEC seconds (default {default:g})")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name} needs CUDA, which this machine does not have; use --device cpu")
    return torch.device(name)


def setup_distributed(device: str = "auto", timeout: float = DEFAULT_DIST_TIMEOUT) -> DistInfo:
    """Reads RANK / WORLD_SIZE / LOCAL_RANK set by torchrun; one process when they are absent."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = pick_device(device)
    if world <= 1:
        return DistInfo(device=dev)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        try:
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(seconds=timeout))
        except dist.DistError as e:
            where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            raise TimeoutError(f"process {rank} of {world}: the processes did not all join at {where} within "
                               f"{timeout:g} s (--dist-timeout): {' '.join(str(e).split())[:300]}") from None
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist())}


def broadcast_int(value: int, info: DistInfo) -> int:
    """The main process's ``value`` on every process (a decision all of them must follow alike)."""
    if not info.enabled:
        return value
    t = torch.tensor([int(value)], dtype=torch.int64, device=info.device)
    dist.broadcast(t, src=0)
    return int(t.item())


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo, wait: bool = True) -> None:
    """End the process group; with ``wait``, first let every process arrive, so that none tears its
    connections down while the main one still writes its last evaluation, checkpoint and samples
    (gloo then aborted the early process now and then)."""
    if info.enabled and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def shared_run_dir(info: DistInfo, chosen: str | None, runs_root: str, stage: str) -> Path:
    """The run folder: ``chosen`` (--resume or --run-dir) or a new ``runs_root/<stage>-<time>``, made by
    the main process and broadcast to the others."""
    from ..runs import new_run_dir

    path = None
    if info.is_main:
        try:
            path = Path(chosen) if chosen else new_run_dir(runs_root, stage)
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ValueError(f"run folder {chosen or runs_root} cannot be made: {e.strerror or e}") from None
    if info.enabled:
        box = [str(path) if path else None]
        dist.broadcast_object_list(box, src=0)
        path = Path(box[0])
    return path
