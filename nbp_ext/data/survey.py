"""What a user's video folder or list holds, said before a pipeline spends time on it: files per
split, classes, unreadable files (opened, not decoded) and clips per epoch."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import av
from tqdm import tqdm

from .builder import DataConfig, build_dataset


@dataclass
class Survey:
    train_files: int
    val_files: int
    classes: list[str]
    bad: dict[str, str] = field(default_factory=dict)  # path -> reason

    def summary(self, data: DataConfig) -> str:
        shown = "; ".join(f"{p}: {r}" for p, r in list(self.bad.items())[:3])
        bad = f", {len(self.bad)} unreadable ({shown}{'; ...' if len(self.bad) > 3 else ''})" if self.bad else ", none unreadable"
        fps = data.fps or {"ucf101": 8.0, "k600": 16.0}.get(data.dataset)
        return (f"{data.dataset} videos: {self.train_files} training and {self.val_files} held-out files in "
                f"{len(self.classes)} classes{bad}; {self.train_files - len(self.bad)} clips per epoch (one per "
                f"readable file) of {data.frames}x{data.size}x{data.size} at {fps:g} fps")


def _open_problem(path: str) -> str | None:
    """Why ``path`` cannot be a video, found by opening it (no decoding); None if it looks fine."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                return "no video stream (not a video)"
    except FileNotFoundError:
        return "missing"
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, EOFError, OSError) as e:
        return f"cannot open ({type(e).__name__})"
    return None


def survey(data: DataConfig, progress: bool = True) -> Survey:
    """Count and open every file of ``data``'s two splits (a real data set: ucf101 or k600)."""
    train = build_dataset(data, "train")
    val = build_dataset(data, "val")
    bad = {}
    files = [p for p, _ in train.files] + [p for p, _ in val.files]
    for path in tqdm(files, desc="checking videos", unit="file", disable=not progress, leave=False):
        problem = _open_problem(path)
        if problem:
            bad[path] = problem
    return Survey(len(train.files), len(val.files), list(train.class_names), bad)
