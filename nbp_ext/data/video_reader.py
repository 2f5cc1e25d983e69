"""Read one fixed-length clip from a video file with PyAV: resample the frame rate, resize, crop.

Any problem with a file (empty, truncated, not a video, no decoder, too short) raises
``VideoError`` naming the file and the reason, so callers can skip it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np


class VideoError(Exception):
    """A video file that cannot give a clip; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class ClipSpec:
    """``frames`` frames at ``fps`` (None: the file's own rate), short side resized to ``size`` then a
    centre ``size`` x ``size`` crop; ``position`` is ``"random"`` (training), ``"center"`` (evaluation) or ``"start"`` (the first frames,
    e.g. the context of frame prediction)."""

    frames: int = 17
    size: int = 128
    fps: float | None = None
    position: str = "random"

    def __post_init__(self):
        if self.frames < 1 or self.size < 1:
            raise ValueError(f"frames and size must be >= 1, got frames={self.frames}, size={self.size}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0 or None, got {self.fps}")
        if self.position not in ("random", "center", "start"):
            raise ValueError(f"position must be 'random', 'center' or 'start', got {self.position!r}")


def _resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Short side -> ``size``, aspect ratio kept."""
    if width <= height:
        return size, max(size, round(height * size / width))
    return max(size, round(width * size / height)), size


def _decode(path: str, size: int) -> tuple[np.ndarray, list[np.ndarray], float]:
    """All frames, short side resized to ``size``: (times (N,), frames [(h, w, 3) uint8], native fps)."""
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                raise VideoError(path, "no video stream (not a video)")
            stream = container.streams.video[0]
            if stream.codec_context is None or not stream.codec_context.name:
                raise VideoError(path, "unsupported codec (no decoder)")
            stream.thread_type = "AUTO"
            rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
            times, frames = [], []
            for frame in container.decode(stream):
                w, h = _resized_size(frame.width, frame.height, size)
                t = float(frame.time) if frame.time is not None else len(times) / rate
                times.append(t)
                frames.append(frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray())
    except VideoError:
        raise
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, EOFError) as e:
        raise VideoError(path, f"cannot decode: truncated or not a video ({type(e).__name__}: {e})") from None
    if not frames:
        raise VideoError(path, "no decodable frames (truncated, or an unsupported codec)")
    return np.asarray(times, dtype=np.float64), frames, rate


def _center_crop(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return frame[top:top + size, left:left + size]


def read_clip(path: str | os.PathLike, spec: ClipSpec, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """One clip: (uint8 (frames, size, size, 3), index of its first frame in the file)."""
    path = str(path)
    times, frames, rate = _decode(path, spec.size)
    order = np.argsort(times, kind="stable")
    times = times[order]
    if spec.fps is None:
        if len(frames) < spec.frames:
            raise VideoError(path, f"shorter than one clip ({len(frames)} frames, need {spec.frames})")
        last_start = len(frames) - spec.frames
        if spec.position == "start":
            start = 0
        else:
            start = last_start // 2 if spec.position == "center" else int((rng or np.random.default_rng()).integers(last_start + 1))
        picked = order[start:start + spec.frames]
    else:
        span = (spec.frames - 1) / spec.fps  # seconds from the first to the last frame of a clip
        slack = (times[-1] - times[0]) + 0.5 / rate - span  # room for the start time
        if slack < 0:
            have = times[-1] - times[0] + 1 / rate
            raise VideoError(path, f"shorter than one clip ({have:.2f} s, need {span + 1 / spec.fps:.2f} s at {spec.fps:g} fps)")
        if spec.position == "start":
            offset = 0.0
        else:
            offset = slack / 2 if spec.position == "center" else float((rng or np.random.default_rng()).uniform(0, slack))
        wanted = times[0] + offset + np.arange(spec.frames) / spec.fps  # (frames,) target times
        nearest = np.clip(np.searchsorted(times, wanted), 1, len(times) - 1)
        nearest = np.where(np.abs(times[nearest - 1] - wanted) <= np.abs(times[nearest] - wanted), nearest - 1, nearest)
        if len(times) == 1:
            nearest = np.zeros(spec.frames, dtype=np.int64)
        picked = order[nearest]
        start = int(nearest[0])
    clip = np.stack([_center_crop(frames[i], spec.size) for i in picked])  # (frames, size, size, 3)
    return clip, int(start)
