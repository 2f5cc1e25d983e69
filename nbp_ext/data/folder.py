"""Video files on disk as clip datasets: the UCF-101 folder layout and Kinetics-style lists.

A file that cannot give a clip does not raise: its item has ``video=None`` and ``error`` set, the
collate function drops it, and ``BadFileTracker`` counts it (see ``bad_files.py``).
"""

from __future__ import annotations

import csv
import os
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .video_reader import ClipSpec, VideoError, read_clip

VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")


class VideoFileDataset(Dataset):
    """``files``: list of (path, label). Items: ``{"video": (3, T, S, S) in [-1, 1] or None, "label",
    "video_id", "start", "path", "error"}``."""

    def __init__(self, files: list[tuple[str, int]], spec: ClipSpec, class_names: list[str] | None = None,
                 seed: int = 0):
        if not files:
            raise ValueError("files must list at least one video (check the root folder or list file)")
        self.files = files
        self.spec = spec
        self.class_names = class_names or sorted({str(l) for _, l in files})
        self.num_classes = len(self.class_names)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict:
        path, label = self.files[index]
        item = {"video": None, "label": label, "video_id": index, "start": -1, "path": path, "error": None}
        rng = np.random.default_rng([self.seed, self.epoch, index])
        try:
            frames, start = read_clip(path, self.spec, rng)
        except VideoError as e:
            item["error"] = e.reason
            return item
        except Exception as e:  # a bad file must never kill a worker
            item["error"] = f"unexpected {type(e).__name__}: {e}"
            return item
        item["video"] = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, S, S)
        item["start"] = start
        return item


def _list_videos(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


def ucf101_files(root: str | os.PathLike, split: str = "train", fold: int = 1,
                 split_dir: str | os.PathLike | None = None, holdout_percent: int = 10) -> tuple[list[tuple[str, int]], list[str]]:
    """UCF-101 layout ``root/<class>/<file>``. With ``trainlist0N.txt`` / ``testlist0N.txt`` (in
    ``split_dir``, default ``root``) those choose the files; without them a fixed ``holdout_percent``
    of files (by a hash of the path) is the test split. Returns (files, class names)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"root must be a folder of class folders (UCF-101 layout), got {root}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"root must hold one folder per class, found none in {root}")
    index = {c: i for i, c in enumerate(classes)}
    split_dir = Path(split_dir) if split_dir else root
    list_file = split_dir / f"{split}list{fold:02d}.txt"
    if list_file.is_file():
        rel = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    else:
        wanted_test = split == "test"
        rel = [r for r in _list_videos(root) if (zlib.crc32(r.encode()) % 100 < holdout_percent) == wanted_test]
    files = []
    for r in rel:
        cls = Path(r).parts[0]
        if cls not in index:
            raise ValueError(f"{list_file}: class folder {cls!r} of {r!r} is not in {root}")
        files.append((str(root / r), index[cls]))
    return files, classes


def list_files(list_path: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """Kinetics-style list: a CSV or text file of ``path,label`` lines (an optional ``path,label``
    header), or the official Kinetics CSV (``label,youtube_id,time_start,time_end,...``), whose files
    are looked up as ``root/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4``. Relative paths are
    taken from ``root`` (default: the list's folder). Labels are class names or integers."""
    list_path = Path(list_path)
    if not list_path.is_file():
        raise FileNotFoundError(f"list file must exist (a CSV of path,label), got {list_path}")
    root = Path(root) if root else list_path.parent
    with open(list_path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if not rows:
        raise ValueError(f"list file {list_path} has no entries")
    header = [c.strip().lower() for c in rows[0]]
    entries: list[tuple[str, str]] = []
    if "youtube_id" in header:
        col = {name: header.index(name) for name in ("label", "youtube_id", "time_start", "time_end")}
        for r in rows[1:]:
            label = r[col["label"]].strip()
            name = f"{r[col['youtube_id']]}_{int(float(r[col['time_start']])):06d}_{int(float(r[col['time_end']])):06d}.mp4"
            entries.append((str(root / label / name), label))
    else:
        body = rows[1:] if header[:2] == ["path", "label"] else rows
        for n, r in enumerate(body):
            if len(r) < 2:
                raise ValueError(f"{list_path}: every line must be 'path,label', line {n + 1} is {','.join(r)!r}")
            path = Path(r[0].strip())
            entries.append((str(path if path.is_absolute() else root / path), r[1].strip()))
    if all(label.isdigit() for _, label in entries):
        num = max(int(l) for _, l in entries) + 1
        return [(p, int(l)) for p, l in entries], [str(i) for i in range(num)]
    classes = sorted({l for _, l in entries})
    index = {c: i for i, c in enumerate(classes)}
    return [(p, index[l]) for p, l in entries], classes
