"""Pre-extracted tokens on disk: a memory-mapped code array plus an index, written resumably.

Folder layout:
  tokens.npy   (N, T', H', W') uint16 (int32 when the vocabulary exceeds 65 536), memory-mapped
  index.npy    (N, 3) int64: video id, clip start frame, label (rows past ``rows`` are unused)
  meta.json    shapes, vocabulary, progress (``done`` dataset items, ``rows`` rows), ``complete``
  videos.txt   one line per dataset item: the video's path or synthetic id
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..records import write_record

TOKENS, INDEX, META, VIDEOS = "tokens.npy", "index.npy", "meta.json", "videos.txt"
META_KEYS = ("num_items", "latent_shape", "vocab_size", "dtype", "done", "rows", "complete")


def read_meta(path: Path) -> dict:
    """A token folder's meta.json, or a ValueError naming the file and what is wrong with it."""
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({str(e)[:80]}); run python -m nbp_ext.tokenize --overwrite") from None
    missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise ValueError(f"{path}: lacks {missing}; run python -m nbp_ext.tokenize --overwrite")
    return meta


class TokenFileWriter:
    """Creates the folder, or reopens it to go on where an interrupted run stopped."""

    def __init__(self, directory: str | os.PathLike, num_items: int, latent_shape: tuple[int, int, int],
                 vocab_size: int, info: dict | None = None, video_names: list[str] | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        dtype = np.uint16 if vocab_size <= 65536 else np.int32
        want = {"num_items": num_items, "latent_shape": list(latent_shape), "vocab_size": vocab_size,
                "dtype": np.dtype(dtype).name, "info": info or {}}
        meta_path = self.dir / META
        if meta_path.is_file():
            self.meta = read_meta(meta_path)
            mismatch = [k for k, v in want.items() if self.meta.get(k) != v]
            if mismatch:
                raise ValueError(f"{self.dir} holds tokens of another run (different {mismatch}); "
                                 f"use another output folder or --overwrite")
            self.tokens = np.load(self.dir / TOKENS, mmap_mode="r+")
            self.index = np.load(self.dir / INDEX, mmap_mode="r+")
        else:
            self.meta = {**want, "done": 0, "rows": 0, "complete": False}
            shape = (num_items, *latent_shape)
            self.tokens = np.lib.format.open_memmap(self.dir / TOKENS, mode="w+", dtype=dtype, shape=shape)
            self.index = np.lib.format.open_memmap(self.dir / INDEX, mode="w+", dtype=np.int64, shape=(num_items, 3))
            self.index[:] = -1
            if video_names is not None:
                (self.dir / VIDEOS).write_text("".join(f"{n}\n" for n in video_names))
            self.commit(0)

    @property
    def done(self) -> int:
        """Dataset items already processed (skipped bad files included)."""
        return int(self.meta["done"])

    @property
    def complete(self) -> bool:
        return bool(self.meta["complete"])

    def write(self, codes: torch.Tensor, video_id: torch.Tensor, start: torch.Tensor, label: torch.Tensor) -> None:
        """Append rows: codes (B, T', H', W'), the rest (B,)."""
        r, b = int(self.meta["rows"]), codes.shape[0]
        if b == 0:
            return
        self.tokens[r:r + b] = codes.cpu().numpy().astype(self.tokens.dtype)
        self.index[r:r + b] = torch.stack([video_id, start, label], dim=1).cpu().numpy()  # (B, 3)
        self.meta["rows"] = r + b

    def commit(self, done: int, complete: bool = False) -> None:
        """Flush the arrays, then record progress; a crash before this keeps the last committed state."""
        self.tokens.flush()
        self.index.flush()
        self.meta["done"], self.meta["complete"] = int(done), bool(complete)
        write_record(self.dir / META, self.meta)


class TokenDataset(Dataset):
    """Items ``{"codes": int64 (T', H', W'), "label", "video_id", "start"}`` from a token folder."""

    def __init__(self, directory: str | os.PathLike, allow_incomplete: bool = False):
        self.dir = Path(directory)
        if not (self.dir / META).is_file():
            raise FileNotFoundError(f"directory must be a token folder with {META} (made by python -m nbp_ext.tokenize), got {self.dir}")
        self.meta = read_meta(self.dir / META)
        if not self.meta["complete"] and not allow_incomplete:
            raise ValueError(f"token folder {self.dir} is incomplete ({self.meta['done']} of {self.meta['num_items']} "
                             "items); run python -m nbp_ext.tokenize again to finish it")
        self.rows = int(self.meta["rows"])
        self._open()
        self.vocab_size = int(self.meta["vocab_size"])
        self.latent_shape = tuple(self.meta["latent_shape"])
        self.class_names = self.meta.get("info", {}).get("class_names")

    def _open(self) -> None:
        self.tokens = np.load(self.dir / TOKENS, mmap_mode="r")
        self.index = np.load(self.dir / INDEX, mmap_mode="r")

    def __getstate__(self) -> dict:
        # sent to a loader worker without the token arrays (pickling a memory map copies its data);
        # the worker maps the files again
        return {k: v for k, v in self.__dict__.items() if k not in ("tokens", "index")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.rows:
            raise IndexError(f"index must be in [0, {self.rows}), got {i}")
        video_id, start, label = (int(x) for x in self.index[i])
        codes = torch.from_numpy(self.tokens[i].astype(np.int64))  # (T', H', W')
        return {"codes": codes, "label": label, "video_id": video_id, "start": start}
