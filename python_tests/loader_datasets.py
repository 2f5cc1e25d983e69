"""Datasets for the loader tests, in a module of their own so that workers started by forkserver
or spawn can import them."""

from __future__ import annotations

import time

import av
import torch
from torch.utils.data import Dataset


def shared_scaler_frames(path: str, sizes: tuple[int, ...] = (40, 24)) -> list:
    """Every frame of ``path`` converted by PyAV's shared per-thread scaler (``to_ndarray`` with a size)
    at each of ``sizes``: what code outside nbp does with PyAV, leaving the scaler's threads running."""
    out = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            for size in sizes:
                out.append(frame.to_ndarray(format="rgb24", width=size, height=size))
    return out


class StuckAt(Dataset):
    """Items of ``n`` named files; reading item ``stuck`` never ends (a file on a dead mount, say)."""

    def __init__(self, n: int, stuck: int):
        self.files = [(f"/data/clip_{i:02d}.avi", 0) for i in range(n)]
        self.stuck = stuck

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        if i == self.stuck:
            time.sleep(3600)
        return {"video": torch.zeros(3, 1, 2, 2), "label": 0, "video_id": i, "start": 0}


class SharedScalerFiles(Dataset):
    """Items decoded with PyAV's shared scaler, as other code would (not nbp's reader)."""

    def __init__(self, paths: list[str]):
        self.files = [(p, 0) for p in paths]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        frames = shared_scaler_frames(self.files[i][0], sizes=(32,))
        video = torch.from_numpy(frames[0]).permute(2, 0, 1)[:, None].float()  # (3, 1, 32, 32)
        return {"video": video, "label": 0, "video_id": i, "start": 0}
