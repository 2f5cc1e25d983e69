"""Write uint8 frames (T, H, W, 3) to an MP4 (H.264, else MPEG-4) or GIF file with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Any shape in [-1, 1] (clamped) -> uint8 0..255, same shape."""
    return ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> uint8 (T, H, W, 3)."""
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"video must have shape (3, T, H, W), got {tuple(video.shape)}")
    return to_uint8(video).permute(1, 2, 3, 0).cpu().numpy()


def _pick_codec(container: str) -> str:
    if container == "gif":
        return "gif"
    for name in ("libx264", "h264", "mpeg4"):
        if name in av.codecs_available:
            return name
    raise RuntimeError("PyAV has neither an H.264 nor an MPEG-4 encoder; write a .gif instead")


def viewing_scale(height: int, min_height: int = 128) -> int:
    """The whole-number enlargement that makes a video of ``height`` pixels at least ``min_height``
    high: small synthetic clips (32 or 48 pixels) are enlarged for viewing, since H.264 halves the
    colour resolution and would smear their few-pixel objects."""
    return max(1, -(-min_height // max(height, 1)))


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float = 8.0, scale: int = 1) -> Path:
    """Write ``frames`` uint8 (T, H, W, 3) to ``path`` (.mp4, .avi or .gif), each pixel repeated
    ``scale`` x ``scale`` times (nearest-neighbour enlargement); odd sizes are padded for H.264."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an int >= 1, got {scale!r}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # (T, H * scale, W * scale, 3)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("mp4", "avi", "gif"):
        raise ValueError(f"path must end in .mp4, .avi or .gif, got {path.name!r}")
    codec = _pick_codec(suffix)
    if codec != "gif":  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp." + suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return path

