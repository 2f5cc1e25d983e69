"""``python -m nbp_ext.sample``: videos from a trained generator run.

    python -m nbp_ext.sample --run runs/generator-<time> --class 3 --num 4 --seed 0 --guidance-scale 2.0 --out video.mp4
    python -m nbp_ext.sample --run runs/generator-<time> --context clip.mp4 --out prediction.mp4

Writes an MP4 (PyAV) or GIF with the videos side by side, and with --save-tokens the codes (.pt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .cli_errors import run_command

from .data import CLASS_NAMES, VideoError, read_clip
from .data.video_reader import ClipSpec
from .generate import generate
from .generate.sampling_config import add_sampling_arguments, resolve_sampling
from .generate.videos import decode, write_videos
from .hardware import require_native_bf16
from .models import Generator, VideoTokenizer
from .runs import load_run
from .train.distributed import pick_device

MAX_VIDEOS = 256  # --num: the videos of one call are generated together and written side by side


def _context_codes(model: Generator, tokenizer: VideoTokenizer, path: str, device) -> torch.Tensor:
    """Encode the first frames of a video file into the generator's context tokens (1, P).

    The encoder is causal in time, so the context latent frames depend on the first
    1 + 4 * (context_frames - 1) frames only; the rest of the clip is padded with the last one.
    """
    mcfg = model.config
    need, total = 1 + 4 * (mcfg.context_frames - 1), 1 + 4 * (mcfg.grid[0] - 1)
    size = tokenizer.config.spatial_factor * mcfg.grid[1]
    try:
        frames, _ = read_clip(path, ClipSpec(frames=need, size=size, fps=None, position="start"))
    except VideoError as e:
        raise ValueError(f"--context {path}: {e} (frame prediction needs its first {need} frames)") from e
    video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, need, H, W) in [-1, 1]
    video = torch.cat([video, video[:, -1:].expand(-1, total - need, -1, -1)], dim=1)  # (3, total, H, W)
    codes = tokenizer.encode(video[None].to(device))  # (1, T', H', W')
    context, _ = model.split_codes(codes)
    return context


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(prog="python -m nbp_ext.sample", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="generator run folder (runs/generator-<time>)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the one recorded in the run)")
    ap.add_argument("--class", dest="cls", type=int, default=None, help="class id (class-conditional models)")
    ap.add_argument("--context", default=None, help="video file whose first frames are given (frame prediction)")
    ap.add_argument("--num", type=int, default=4, help="videos to generate")
    ap.add_argument("--seed", type=int, default=0, help="video i uses seed + i")
    add_sampling_arguments(ap)
    ap.add_argument("--out", default="video.mp4", help=".mp4 or .gif; the videos side by side")
    ap.add_argument("--save-tokens", action="store_true", help="also write the codes next to --out (.pt)")
    ap.add_argument("--scale", type=int, default=0,
                    help="enlarge each pixel N x N in the video file; 0 (default): enough for 128 pixels "
                         "high (4x for 32-pixel clips); 1: native size")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="the generator's weights and activations: fp32 (the tokens run_engine's fp32 engines "
                         "give) or bf16 (faster where the CPU has bf16 instructions or on a GPU; draws near a "
                         "boundary between two tokens may differ from fp32's)")
    args = ap.parse_args(argv)
    try:
        device = pick_device(args.device)
        model, tokenizer, info = load_run(args.run, device, args.tokenizer)
        if args.precision == "bf16":
            require_native_bf16(device)
            model = model.to(torch.bfloat16)
        mcfg = model.config
        sampling = resolve_sampling(args, info, mcfg.condition)
        if not 1 <= args.num <= MAX_VIDEOS:
            raise ValueError(f"--num must be in [1, {MAX_VIDEOS}] (videos written side by side into one file), "
                             f"got {args.num}")
        if args.context is not None and mcfg.condition != "frames":
            raise ValueError(f"--context is for frame-prediction models; this one is conditioned on {mcfg.condition!r}")
        if mcfg.condition == "class":
            if args.cls is None:
                raise ValueError(f"--class is required: this model is class-conditional (0 .. {mcfg.num_classes - 1})")
            if not 0 <= args.cls < mcfg.num_classes:
                raise ValueError(f"--class must be in [0, {mcfg.num_classes}), got {args.cls}")
            codes = generate(model, torch.full((args.num,), args.cls), seed=args.seed, sampling=sampling)
        elif mcfg.condition == "frames":
            if args.context is None:
                raise ValueError("--context is required: this model predicts frames from a given clip")
            context = _context_codes(model, tokenizer, args.context, device).expand(args.num, -1)
            codes = generate(model, context, seed=args.seed, sampling=sampling)
        else:
            codes = generate(model, num_videos=args.num, seed=args.seed, sampling=sampling)
        out = write_videos(args.out, decode(tokenizer, codes), args.scale)
        if args.save_tokens:
            torch.save(codes.cpu(), Path(out).with_suffix(".pt"))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    names = info.get("class_names") or CLASS_NAMES
    label = f" of class {args.cls} ({names[args.cls]})" if args.cls is not None and args.cls < len(names) else ""
    print(f"wrote {args.num} videos{label} to {out}")
    return Path(out)


if __name__ == "__main__":
    run_command(main)
