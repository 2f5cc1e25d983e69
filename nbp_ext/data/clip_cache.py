"""A video set decoded once (``--clip-cache DIR``): every file's frames at the clip's frame rate,
resized and centre-cropped, in one memory-mapped uint8 file, so that training over many epochs
decodes nothing.

``DIR/<split>-<key>/`` holds ``frames.u8`` ((total frames, size, size, 3) uint8, appended file by
file) and ``index.json`` (the clip spec, and per file its offset, frame count, label or the reason
it is bad). Building is resumable: an interrupted build continues after the last file it recorded.
A clip is ``frames`` consecutive cached frames from a position drawn per (seed, epoch, file) for
training, the middle for evaluation: positions fall on the cached frames, not between them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from .video_reader import ClipSpec, VideoError, read_all_frames

INDEX, FRAMES = "index.json", "frames.u8"


def cache_folder(root: str | os.PathLike, split: str, files: list[tuple[str, int]], spec: ClipSpec) -> Path:
    """The cache of these files at this spec (another size or frame rate gets another folder)."""
    key = json.dumps({"files": files, "size": spec.size, "fps": spec.fps}, sort_keys=True)
    return Path(root) / f"{split}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_clip_cache(folder: Path, files: list[tuple[str, int]], spec: ClipSpec, progress: bool = True) -> Path:
    """Decode ``files`` into ``folder`` (continuing an interrupted build); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    index_path, frames_path = folder / INDEX, folder / FRAMES
    index = (json.loads(index_path.read_text()) if index_path.is_file() else
             {"size": spec.size, "fps": spec.fps, "entries": [], "complete": False})
    if index["complete"]:
        return folder
    entries = index["entries"]
    total = sum(e["length"] for e in entries)
    frame_bytes = spec.size * spec.size * 3
    with open(frames_path, "ab") as out:
        out.truncate(total * frame_bytes)  # drop frames written after the last recorded file
        out.seek(total * frame_bytes)
        for path, label in tqdm(files[len(entries):], desc=f"clip cache {folder.name}", unit="file",
                                disable=not progress, initial=len(entries), total=len(files)):
            entry = {"path": path, "label": int(label), "offset": total, "length": 0, "error": None}
            try:
                frames = read_all_frames(path, spec.size, spec.fps)  # (n, size, size, 3)
                out.write(np.ascontiguousarray(frames).tobytes())
                entry["length"] = int(frames.shape[0])
                total += entry["length"]
            except VideoError as e:
                entry["error"] = e.reason
            entries.append(entry)
            out.flush()
            tmp = index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(index))
            os.replace(tmp, index_path)
    index["complete"] = True
    index_path.write_text(json.dumps(index))
    return folder


class CachedClipDataset(Dataset):
    """Clips from a finished clip cache; items as ``VideoFileDataset``'s (bad files: ``video`` None)."""

    def __init__(self, folder: Path, spec: ClipSpec, class_names: list[str], seed: int = 0):
        index = json.loads((Path(folder) / INDEX).read_text())
        if not index.get("complete"):
            raise ValueError(f"clip cache {folder} is not finished; build it with build_clip_cache")
        self.entries, self.spec, self.seed, self.epoch = index["entries"], spec, seed, 0
        self.class_names, self.num_classes = class_names, len(class_names)
        self.files = [(e["path"], e["label"]) for e in self.entries]
        self.folder = Path(folder)
        self._frames = None  # opened in each worker process

    def __len__(self) -> int:
        return len(self.entries)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _all_frames(self) -> np.ndarray:
        if self._frames is None:
            size = self.spec.size
            path = self.folder / FRAMES
            count = path.stat().st_size // (size * size * 3)
            self._frames = np.memmap(path, dtype=np.uint8, mode="r", shape=(count, size, size, 3))
        return self._frames

    def __getitem__(self, index: int) -> dict:
        e = self.entries[index]
        item = {"video": None, "label": e["label"], "video_id": index, "start": -1, "path": e["path"], "error": e["error"]}
        if e["error"] is not None:
            return item
        room = e["length"] - self.spec.frames
        if room < 0:
            item["error"] = f"shorter than one clip ({e['length']} frames at the cache's rate, need {self.spec.frames})"
            return item
        if self.spec.position == "random":
            start = int(np.random.default_rng([self.seed, self.epoch, index]).integers(room + 1))
        else:
            start = 0 if self.spec.position == "start" else room // 2
        frames = self._all_frames()[e["offset"] + start:e["offset"] + start + self.spec.frames]  # (T, S, S, 3)
        item["video"] = torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, S, S)
        item["start"] = start
        return item
