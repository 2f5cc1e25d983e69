"""Read one fixed-length clip from a video file with PyAV: resample the frame rate, resize, crop.

``read_clip`` learns the frame times from the container's packets without decoding, picks the
clip's frames, seeks to the key frame before the first one and decodes from there, converting and
resizing only the frames the clip uses. ``read_clip_reference`` decodes and converts every frame:
it is the definition the fast path must match (same frames, same pixels), and the fallback for a
file whose packets carry no times or whose seek misses.

Any problem with a file (empty, truncated, not a video, no decoder, too short) raises
``VideoError`` naming the file and the reason, so callers can skip it.

Frames are converted by a scaler each read owns, with one thread, never by PyAV's shared
per-thread one (``VideoFrame.reformat``): that one keeps its libswscale slice threads between
calls, and a process forked after using it (a loader worker) inherits a scaler whose threads do
not exist there, so its next reconfiguration waits forever on them. Loader workers get their
parallelism from processes, not from scaler threads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

SCALER_THREADS = 1  # libswscale slice threads per conversion (0: PyAV's automatic choice)


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


def _to_rgb(scaler: VideoReformatter, frame: av.VideoFrame, size: int) -> np.ndarray:
    """``frame`` as rgb24 (h, w, 3) uint8, short side resized to ``size`` (area averaging)."""
    w, h = _resized_size(frame.width, frame.height, size)
    return scaler.reformat(frame, width=w, height=h, format="rgb24", interpolation="AREA",
                           threads=SCALER_THREADS).to_ndarray()


def _decode(path: str, size: int) -> tuple[np.ndarray, list[np.ndarray], float]:
    """All frames, short side resized to ``size``: (times (N,), frames [(h, w, 3) uint8], native fps)."""
    if not os.path.isfile(path):
        raise VideoError(path, "no such file")
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
            times, frames, scaler = [], [], VideoReformatter()
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(times) / rate
                times.append(t)
                frames.append(_to_rgb(scaler, frame, size))
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


def _pick(path: str, times: np.ndarray, rate: float, spec: ClipSpec, rng: np.random.Generator | None) -> tuple[np.ndarray, int]:
    """The clip's frames: indices into the sorted ``times`` (seconds), and the first one's index."""
    if spec.fps is None:
        if len(times) < spec.frames:
            raise VideoError(path, f"shorter than one clip ({len(times)} frames, need {spec.frames})")
        last_start = len(times) - spec.frames
        if spec.position == "start":
            start = 0
        else:
            start = last_start // 2 if spec.position == "center" else int((rng or np.random.default_rng()).integers(last_start + 1))
        return np.arange(start, start + spec.frames), start
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
    if len(times) == 1:
        return np.zeros(spec.frames, dtype=np.int64), 0
    nearest = np.clip(np.searchsorted(times, wanted), 1, len(times) - 1)
    nearest = np.where(np.abs(times[nearest - 1] - wanted) <= np.abs(times[nearest] - wanted), nearest - 1, nearest)
    return nearest, int(nearest[0])


def read_clip_reference(path: str | os.PathLike, spec: ClipSpec, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """One clip by decoding and converting every frame: (uint8 (frames, size, size, 3), index of its
    first frame in the file)."""
    path = str(path)
    times, frames, rate = _decode(path, spec.size)
    order = np.argsort(times, kind="stable")
    picked, start = _pick(path, times[order], rate, spec, rng)
    clip = np.stack([_center_crop(frames[i], spec.size) for i in order[picked]])  # (frames, size, size, 3)
    return clip, start


def _packet_pts(container, stream) -> list[int] | None:
    """The presentation times of the video packets, sorted, read without decoding; None where a
    packet has none (the caller then decodes everything)."""
    pts = []
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's closing empty packet
            continue
        if packet.pts is None:
            return None
        pts.append(int(packet.pts))
    return sorted(pts) if pts and len(set(pts)) == len(pts) else None


def read_clip(path: str | os.PathLike, spec: ClipSpec, rng: np.random.Generator | None = None) -> tuple[np.ndarray, int]:
    """One clip: (uint8 (frames, size, size, 3), index of its first frame in the file), equal to
    ``read_clip_reference``'s, decoding from the key frame before the clip and converting only its frames."""
    path = str(path)
    state = rng.bit_generator.state if rng is not None else None
    try:
        clip = _read_clip_seeking(path, spec, rng)
    except (VideoError, av.error.FFmpegError, UnicodeDecodeError, ValueError, EOFError):
        clip = None
    if clip is not None:
        return clip
    if rng is not None:  # the reference draws the same position
        rng.bit_generator.state = state
    return read_clip_reference(path, spec, rng)


def _read_clip_seeking(path: str, spec: ClipSpec, rng: np.random.Generator | None) -> tuple[np.ndarray, int] | None:
    """The fast path, or None where it cannot be sure of giving the reference's frames."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    with av.open(path, mode="r", metadata_errors="ignore") as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if stream.time_base is None:
            return None
        pts = _packet_pts(container, stream)
        if pts is None:
            return None
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        times = np.asarray([float(p * stream.time_base) for p in pts], dtype=np.float64)
        picked, start = _pick(path, times, rate, spec, rng)
        wanted = {pts[i] for i in picked}
        first, last = min(wanted), max(wanted)
        container.seek(first, stream=stream, backward=True, any_frame=False)
        converted: dict[int, np.ndarray] = {}
        scaler = VideoReformatter()
        for frame in container.decode(stream):
            if frame.pts is None:
                return None
            if not converted and frame.pts > first:  # the seek landed after the clip's first frame
                return None
            if frame.pts in wanted and frame.pts not in converted:
                converted[frame.pts] = _to_rgb(scaler, frame, spec.size)
            if frame.pts >= last and len(converted) == len(wanted):
                break
        if len(converted) != len(wanted):
            return None
        clip = np.stack([_center_crop(converted[pts[i]], spec.size) for i in picked])  # (frames, size, size, 3)
        return clip, start


def _frame_times(path: str) -> tuple[np.ndarray, float]:
    """A file's frame times (seconds) and frame rate: from its packets where they carry times,
    else by a one-pixel decode."""
    try:
        with av.open(path, mode="r", metadata_errors="ignore") as container:
            if container.streams.video:
                stream = container.streams.video[0]
                pts = _packet_pts(container, stream) if stream.time_base is not None else None
                if pts:
                    rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
                    return np.asarray([float(p * stream.time_base) for p in pts]), rate
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, EOFError, OSError):
        pass  # the decode below names the problem
    times, _, rate = _decode(path, 1)
    return times, rate


def read_all_frames(path: str | os.PathLike, size: int, fps: float | None) -> np.ndarray:
    """Every frame of a file at ``fps`` (None: its own), short side resized to ``size`` and centre
    cropped: uint8 (n, size, size, 3), the frames a clip of ``read_clip`` draws from."""
    path = str(path)
    times, rate = _frame_times(path)
    if fps is None:
        count = len(times)
    else:
        count = int(np.floor((times.max() - times.min() + 0.5 / rate) * fps + 1e-9)) + 1
    return read_clip(path, ClipSpec(frames=max(1, count), size=size, fps=fps, position="start"))[0]
