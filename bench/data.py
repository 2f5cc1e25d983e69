"""Clip loading from video files of UCF-101's kind: 7-second 320x240 25 fps MPEG-4 AVIs, written here.

    python bench/data.py [--files 16] [--frames 17] [--size 128] [--fps 8] [--repeat 3]

Rows, each in clips (or files) per second on this machine, in one run:
- decoding alone: every frame of a file decoded, nothing converted (the floor a clip can cost);
- the reference reader (``read_clip_reference``: decode and convert every frame);
- the reader (``read_clip``: decode from the key frame before the clip, convert only its frames),
  with its own one-thread scaler per read (fork-safe), and as it converted before: PyAV's shared
  per-thread scaler with automatic threads (which deadlocked forked workers);
- torchcodec's decoder, where it is installed, fetching the clip's frames by index and resizing them
  (PyTorch's decoder, which needs the system's FFmpeg libraries);
- the training loader (``VideoFileDataset`` through ``make_loader``, batches of 8) with 0 workers,
  and 1 and 2 workers under each start method (``--worker-start``); every epoch starts its workers
  anew, so the rate includes their start (the time to the first batch is its own column).
The cost column is a clip's cost against decoding its file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, print_table  # noqa: E402

from nbp_ext.data import video_reader  # noqa: E402
from nbp_ext.data.bad_files import collate_clips  # noqa: E402
from nbp_ext.data.folder import VideoFileDataset  # noqa: E402
from nbp_ext.data.loader import WORKER_STARTS, LoaderOptions, make_loader  # noqa: E402
from nbp_ext.data.video_reader import ClipSpec, read_clip, read_clip_reference  # noqa: E402


def write_avi(path: Path, seconds: float = 7.0, fps: int = 25, width: int = 320, height: int = 240, seed: int = 0) -> Path:
    """A moving textured scene (so the codec has work, like a real video), MPEG-4 Part 2 in AVI."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (height * 2, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(int(seconds * fps)):
            y, x = (3 * t) % height, (5 * t) % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[y:y + height, x:x + width]), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decode_only(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def torchcodec_reader():
    """A clip reader on torchcodec, or None where it cannot be imported (no package, no FFmpeg)."""
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception:
        return None

    def read(path: Path, spec: ClipSpec, rng: np.random.Generator):
        decoder = VideoDecoder(str(path), dimension_order="NCHW", num_ffmpeg_threads=0)
        meta = decoder.metadata
        rate = float(meta.average_fps)
        step = rate / spec.fps
        last = int(meta.num_frames) - 1 - int(round(step * (spec.frames - 1)))
        start = int(rng.integers(max(1, last + 1)))
        indices = [min(int(meta.num_frames) - 1, start + int(round(i * step))) for i in range(spec.frames)]
        frames = decoder.get_frames_at(indices=indices).data  # (T, 3, H, W) uint8
        h, w = frames.shape[-2:]
        scale = spec.size / min(h, w)
        frames = torch.nn.functional.interpolate(frames.float(), size=(round(h * scale), round(w * scale)), mode="area")
        top, left = (frames.shape[-2] - spec.size) // 2, (frames.shape[-1] - spec.size) // 2
        return frames[..., top:top + spec.size, left:left + spec.size].to(torch.uint8), start

    return read


def per_second(fn, items: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--worker-starts", default=",".join(WORKER_STARTS),
                    help="start methods of the loader rows, comma separated (fork can hang on some machines "
                         "with code that is not fork-safe; nbp's reader is)")
    args = ap.parse_args()
    spec = ClipSpec(frames=args.frames, size=args.size, fps=args.fps, position="random")
    with tempfile.TemporaryDirectory() as tmp:
        files = [write_avi(Path(tmp) / f"v_{i:03d}.avi", seed=i) for i in range(args.files)]
        rows = []
        decode = per_second(decode_only, files, args.repeat)
        rows.append(["decoding alone (files/s)", f"{decode:.1f}", "1.00"])

        def clip_row(name, reader):
            rate = per_second(lambda p: reader(p, spec, np.random.default_rng(0)), files, args.repeat)
            rows.append([name, f"{rate:.1f}", f"{decode / rate:.2f}"])

        clip_row("reference reader: decode and convert every frame", read_clip_reference)
        clip_row("reader: from the key frame before the clip, its frames converted", read_clip)
        own = video_reader._to_rgb

        def shared_scaler(scaler, frame, size):  # the conversion before: PyAV's per-thread scaler
            w, h = video_reader._resized_size(frame.width, frame.height, size)
            return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()

        video_reader._to_rgb = shared_scaler
        try:
            clip_row("reader, before: PyAV's shared scaler, automatic threads (not fork-safe)", read_clip)
        finally:
            video_reader._to_rgb = own
        tc = torchcodec_reader()
        if tc is not None:
            clip_row("torchcodec: frames by index, resized by torch", tc)
        else:
            rows.append(["torchcodec: not installed (or no FFmpeg libraries)", "-", "-"])
        for row in rows:
            row.append("-")
        data = VideoFileDataset([(str(p), 0) for p in files], spec)
        starts = args.worker_starts.split(",")
        for workers, start in [(0, None)] + [(w, s) for s in starts for w in (1, 2)]:
            loader = make_loader(data, 8, None, LoaderOptions(worker_start=start), workers, collate_fn=collate_clips)
            t0 = time.perf_counter()
            clips, first = 0, None
            for _ in range(args.repeat):
                for batch in loader:
                    first = first or time.perf_counter() - t0
                    clips += batch["video"].shape[0]
            rate = clips / (time.perf_counter() - t0)
            name = f"training loader, {workers} worker(s)" + (f", {start}" if start else "")
            rows.append([name, f"{rate:.1f}", f"{decode / rate:.2f}", f"{first:.2f}"])
    print(machine())
    print_table(f"clips of {args.frames}x{args.size}x{args.size} at {args.fps:g} fps from {args.files} 7-second "
                "320x240 25 fps MPEG-4 AVIs", ["reader", "clips/s", "cost vs decoding the file", "first batch (s)"], rows)


if __name__ == "__main__":
    main()
