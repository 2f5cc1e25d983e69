"""Collate clips while dropping bad files, and count bad files over an epoch."""

from __future__ import annotations

import sys

import torch


class TooManyBadFilesError(ValueError):
    """More bad files than ``--max-bad-fraction`` allows; the commands print it as one line."""


def collate_clips(items: list[dict]) -> dict:
    """Stack the good items; ``bad_files`` lists (path, reason) of the rest. ``video`` may have 0 rows."""
    good = [it for it in items if it.get("video") is not None]
    batch = {
        "video": torch.stack([it["video"] for it in good]) if good else torch.empty(0),
        "label": torch.tensor([int(it["label"]) for it in good], dtype=torch.int64),
        "video_id": torch.tensor([int(it["video_id"]) for it in good], dtype=torch.int64),
        "start": torch.tensor([int(it.get("start", 0)) for it in good], dtype=torch.int64),
        "bad_files": [(it.get("path", str(it["video_id"])), it.get("error") or "unknown error")
                      for it in items if it.get("video") is None],
    }
    return batch


class BadFileTracker:
    """Warns once per bad file (naming it), counts them, and raises when more than
    ``max_bad_fraction`` of the ``total_files`` are bad."""

    def __init__(self, total_files: int, max_bad_fraction: float = 0.1, stream=None):
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.total_files = total_files
        self.max_bad_fraction = max_bad_fraction
        self.bad: dict[str, str] = {}
        self.epoch_bad: set[str] = set()
        self.stream = stream

    def update(self, batch: dict) -> None:
        for path, reason in batch.get("bad_files", ()):
            if path not in self.bad:
                print(f"warning: skipping bad video file {path}: {reason}", file=self.stream or sys.stderr, flush=True)
            self.bad[path] = reason
            self.epoch_bad.add(path)
        self.check()

    def check(self) -> None:
        if len(self.bad) > self.max_bad_fraction * self.total_files:
            shown = "; ".join(f"{p}: {r}" for p, r in list(self.bad.items())[:5])
            raise TooManyBadFilesError(
                f"{len(self.bad)} of {self.total_files} video files are bad, more than --max-bad-fraction "
                f"(max_bad_fraction={self.max_bad_fraction:g}) allows; raise it to go on without them "
                f"(first ones: {shown})")

    def end_epoch(self) -> str:
        """The epoch's summary line where a file was skipped in it, else ""; resets the per-epoch count."""
        line = ""
        if self.epoch_bad:
            line = f"{len(self.epoch_bad)} bad video files skipped this epoch ({len(self.bad)} of {self.total_files} in all)"
        self.epoch_bad = set()
        return line

    def total(self) -> str:
        """The closing line: how many files were bad in all."""
        return f"{len(self.bad)} of {self.total_files} video files were bad and skipped (named above when first seen)"
