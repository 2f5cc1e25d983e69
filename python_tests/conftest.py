"""Shared test fixtures."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest


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
