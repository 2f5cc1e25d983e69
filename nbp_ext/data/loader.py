"""Loader worker processes: how they start, and how long they may go without delivering a batch.

Start method (``--worker-start``, or ``NBP_WORKER_START`` for every command at once):
- ``forkserver`` (the default where the platform has it): workers are forked from a clean server
  process started once, which has imported torch, PyAV and the datasets but decoded nothing, so no
  worker inherits the state of the process that made the loader (threads of FFmpeg's scalers or
  decoders, OpenMP pools, locks held by other threads). A worker starts in about the time of a
  fork; the dataset object is sent to it by pickling (datasets keep files, not decoded data).
- ``spawn``: a fresh interpreter per worker (slowest start: it imports torch).
- ``fork``: the parent's copy; the fastest start, and the one that inherits everything.
The video reader itself is fork-safe (``video_reader.py``: no scaler outlives a read), so ``fork``
works with our own decoding too; ``forkserver`` also covers what other code in the parent did.

Stall bound (``--loader-timeout``): a loader whose workers deliver no batch for that many seconds
raises ``LoaderStalled`` naming the file each stuck worker is reading (every worker records the
item it is on in a small shared array), instead of waiting forever.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Callable

from torch.utils.data import DataLoader, Dataset, get_worker_info

from ..cli_errors import check_seconds

WORKER_STARTS = ("forkserver", "spawn", "fork")
DEFAULT_WORKER_START = "forkserver"
WORKER_START_ENV = "NBP_WORKER_START"
DEFAULT_LOADER_TIMEOUT = 300.0  # seconds without a batch; a clip costs tens of milliseconds to read
# imported once by the fork server, so that its workers start without importing them again
_FORKSERVER_PRELOAD = ["torch", "numpy", "av", "nbp_ext.data.folder", "nbp_ext.data.clip_cache",
                       "nbp_ext.data.token_file", "nbp_ext.data.synthetic", "nbp_ext.data.bad_files"]


class LoaderStalled(TimeoutError):
    """Loader workers delivered nothing within ``--loader-timeout``; the message names what they were reading."""


@dataclass
class LoaderOptions:
    num_workers: int | None = None  # None: as many as make sense for the data (builder.default_workers)
    worker_start: str | None = None  # None: NBP_WORKER_START, else DEFAULT_WORKER_START
    loader_timeout: float = DEFAULT_LOADER_TIMEOUT

    def __post_init__(self):
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError(f"--num-workers must be >= 0, got {self.num_workers}")
        check_seconds("--loader-timeout", self.loader_timeout)
        if self.worker_start is not None:
            resolve_worker_start(self.worker_start)


def resolve_worker_start(choice: str | None = None) -> str:
    """``choice``, else ``NBP_WORKER_START``, else the default (``spawn`` where the platform has no
    fork server)."""
    method = choice or os.environ.get(WORKER_START_ENV) or DEFAULT_WORKER_START
    if method not in WORKER_STARTS:
        source = "--worker-start" if choice else WORKER_START_ENV
        raise ValueError(f"{source} must be one of {', '.join(WORKER_STARTS)}, got {method!r}")
    available = mp.get_all_start_methods()
    if method not in available:
        if choice or os.environ.get(WORKER_START_ENV):
            raise ValueError(f"worker start method {method!r} is not available on this platform "
                             f"(it has {', '.join(available)})")
        method = "spawn"
    return method


def worker_context(method: str) -> mp.context.BaseContext:
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(_FORKSERVER_PRELOAD)  # takes effect when the server first starts
    return ctx


class WatchedDataset(Dataset):
    """``dataset`` whose items record, per worker, which index is being read and since when, in
    ``board`` (a shared array of 2 doubles per worker: index or -1, start time)."""

    def __init__(self, dataset: Dataset, board):
        self.dataset, self.board = dataset, board

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        worker = get_worker_info()
        if worker is None:
            return self.dataset[index]
        slot = 2 * worker.id
        self.board[slot + 1], self.board[slot] = time.time(), float(index)
        try:
            return self.dataset[index]
        finally:
            self.board[slot] = -1.0

    def __getattr__(self, name: str):
        if name.startswith("__") or "dataset" not in self.__dict__:  # no dunders; none before unpickling ends
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def item_name(self, index: int) -> str:
        files = getattr(self.dataset, "files", None)
        return str(files[index][0]) if files is not None and 0 <= index < len(files) else f"item {index}"


class WatchedLoader(DataLoader):
    """A DataLoader whose iterators turn a batch that does not come within ``loader_timeout`` seconds
    into ``LoaderStalled`` naming the files the workers are stuck on. With workers, ``.dataset`` is
    the ``WatchedDataset`` around the caller's (its attributes read through)."""

    def __init__(self, dataset: Dataset, options: LoaderOptions, num_workers: int, **kwargs):
        self.options = options
        if num_workers > 0:
            ctx = worker_context(resolve_worker_start(options.worker_start))
            self._board = ctx.RawArray("d", [-1.0, 0.0] * num_workers)
            self._watched = WatchedDataset(dataset, self._board)
            super().__init__(self._watched, num_workers=num_workers, multiprocessing_context=ctx,
                             timeout=options.loader_timeout, **kwargs)
        else:
            self._board = self._watched = None
            super().__init__(dataset, num_workers=0, **kwargs)

    def __iter__(self):
        it = super().__iter__()
        return it if self._board is None else _WatchedIterator(it, self)

    def stall_message(self) -> str:
        now, limit = time.time(), self.options.loader_timeout
        reading = []
        for worker in range(len(self._board) // 2):
            index, since = self._board[2 * worker], self._board[2 * worker + 1]
            if index >= 0:
                reading.append((since, worker, self._watched.item_name(int(index))))
        head = f"loader workers delivered no batch for {limit:g} s (--loader-timeout)"
        if not reading:
            return f"{head}; no worker is inside a read (stuck starting, or in collate)"
        since, worker, name = min(reading)
        more = f"; {len(reading) - 1} other worker(s) also inside a read" if len(reading) > 1 else ""
        return f"{head}: worker {worker} has been reading {name} for {now - since:.0f} s{more}"


class _WatchedIterator:
    def __init__(self, it, loader: WatchedLoader):
        self._it, self._loader = it, loader

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._it)

    def __next__(self):
        try:
            return next(self._it)
        except RuntimeError as e:
            if "timed out" not in str(e):
                raise
            message = self._loader.stall_message()
            shutdown = getattr(self._it, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()  # joins each worker briefly, then terminates the stuck ones
        raise LoaderStalled(message)


def make_loader(dataset: Dataset, batch_size: int, sampler, options: LoaderOptions, num_workers: int,
                collate_fn: Callable | None = None, drop_last: bool = False, persistent_workers: bool = False,
                pin_memory: bool = False, generator=None) -> DataLoader:
    """The one way the commands build a loader: ``num_workers`` processes started by
    ``options.worker_start``, each batch bounded by ``options.loader_timeout``."""
    return WatchedLoader(dataset, options, num_workers, batch_size=batch_size, sampler=sampler,
                         collate_fn=collate_fn, drop_last=drop_last,
                         persistent_workers=persistent_workers and num_workers > 0, pin_memory=pin_memory,
                         generator=generator)


def add_loader_arguments(g: argparse._ArgumentGroup, d: LoaderOptions | None = None) -> None:
    """``--num-workers``, ``--worker-start``, ``--loader-timeout`` (dests as ``LoaderOptions``'s fields)."""
    d = d or LoaderOptions()
    g.add_argument("--num-workers", type=int, default=d.num_workers,
                   help="DataLoader worker processes (default: all cores but one, at most 8, for video files; none "
                        "for rendered clips and token files)")
    g.add_argument("--worker-start", choices=WORKER_STARTS, default=d.worker_start,
                   help=f"how loader workers start (default: ${WORKER_START_ENV}, else {DEFAULT_WORKER_START}: forked "
                        "from a clean server process, so they inherit nothing the command did before, such as "
                        "FFmpeg's threads)")
    g.add_argument("--loader-timeout", type=float, default=d.loader_timeout, metavar="SEC",
                   help=f"end with an error naming the file being read when the workers deliver no batch for SEC "
                        f"seconds (default {d.loader_timeout:g})")
