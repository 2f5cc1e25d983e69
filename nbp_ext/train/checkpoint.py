"""Atomic checkpoints: a crash while saving never leaves a broken ``checkpoint.pt`` behind."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT = "checkpoint.pt"


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``run_dir/checkpoint.pt`` via a temporary file and an atomic rename."""
    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"--resume must name a run folder with {CHECKPOINT}; {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=False)
