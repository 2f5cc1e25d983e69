"""Run folders: ``runs/<stage>-<YYYYmmdd-HHMMSS>`` holding args, checkpoints, logs and samples."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def new_run_dir(runs_root: str | os.PathLike, stage: str) -> Path:
    root = Path(runs_root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{stage}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stage}-{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def latest_run_dir(runs_root: str | os.PathLike, stage: str, must_contain: str | None = None) -> Path | None:
    """Newest ``runs_root/<stage>-*`` folder (holding ``must_contain`` when given), or None."""
    root = Path(runs_root)
    if not root.is_dir():
        return None
    runs = [p for p in root.glob(f"{stage}-*") if p.is_dir() and (must_contain is None or (p / must_contain).exists())]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def save_args(run_dir: Path, args: dict, name: str = "args.json") -> None:
    (run_dir / name).write_text(json.dumps(args, indent=2, default=str) + "\n")
