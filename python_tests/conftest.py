"""Shared test fixtures."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _write_test_video(path: Path, frames: int, width: int, height: int, fps: int, codec: str,
                      pix_fmt: str = "yuv420p", gray: bool = False) -> Path:
    """A gradient that brightens over time (red channel), so frame order can be checked."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for t in range(frames):
            x = np.linspace(0, 1, width)[None, :] * np.ones((height, 1))
            img = np.clip(x * 80 + t * 4, 0, 255).astype(np.uint8)
            if gray:
                frame = av.VideoFrame.from_ndarray(img, format="gray")
            else:
                rgb = np.stack([img, 255 - img, np.full_like(img, 128)], axis=-1)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="session")
def write_test_video():
    """``write_test_video(path, frames, width, height, fps, codec, pix_fmt="yuv420p", gray=False) -> path``."""
    return _write_test_video


@pytest.fixture
def free_port() -> int:
    """A TCP port nothing listens on now, for a torchrun rendezvous (a fixed one may still be held)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token_run(root: Path, frames: int = 9, train_clips: int = 16, val_clips: int = 4) -> Path:
    """``root/tokenizer`` (an untrained tiny tokenizer, 625 codes) and ``root/tokens`` (synthetic
    ``frames``x32x32 clips); returns ``root``."""
    import procs
    import sys

    import torch

    from nbp_ext.models import VideoTokenizer

    torch.manual_seed(0)
    VideoTokenizer.from_name("tiny", fsq_levels=(5, 5, 5, 5)).save_pretrained(root / "tokenizer")
    procs.run([sys.executable, "-m", "nbp_ext.tokenize", "--tokenizer", str(root / "tokenizer"), "--out",
                    str(root / "tokens"), "--dataset", "synthetic", "--size", "32", "--frames", str(frames),
                    "--train-clips", str(train_clips), "--val-clips", str(val_clips), "--no-progress"],
                   check=True, cwd=REPO, capture_output=True)
    return root


def make_generator_run(root: Path, train_clips: int = 16, val_clips: int = 4, name: str = "run") -> Path:
    """``make_token_run`` (9x32x32 clips) and ``root/<name>``, a generator run of 2 steps with a
    checkpoint after each."""
    import procs
    import sys

    make_token_run(root, 9, train_clips, val_clips)
    procs.run([sys.executable, "-m", "nbp_ext.train", "generator", "--tokens", str(root / "tokens"), "--run-dir",
                    str(root / name), "--steps", "2", "--batch-size", "4", "--eval-every", "100", "--sample-every",
                    "100", "--ckpt-every", "1", "--no-progress"], check=True, cwd=REPO, capture_output=True)
    return root / name
