"""``python -m nbp_ext.sample``: videos from a trained generator run.

    python -m nbp_ext.sample --run runs/nbp-<time> --class 3 --num 4 --seed 0 --cfg 2.0 --out video.mp4
    python -m nbp_ext.sample --run runs/nbp-<time> --context clip.mp4 --out prediction.mp4

Writes an MP4 (PyAV) or GIF with the videos side by side, and with --save-tokens the codes (.pt).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from .cli_errors import run_command

from .data import CLASS_NAMES, VideoError, read_clip, to_uint8_frames, viewing_scale, write_video
from .data.video_reader import ClipSpec
from .generate import SamplingConfig, generate
from .hardware import require_native_bf16
from .models import NBPTransformer, VideoTokenizer
from .models.pretrained import WEIGHTS_FILE, file_sha256
from .train.distributed import pick_device

GENERATOR_DIR = "generator"  # run_dir/generator: config.json + model.safetensors
GRID_VIDEOS = 12  # videos in a sample grid: every class of the synthetic set
MAX_VIDEOS = 256  # --num: the videos of one call are generated together and written side by side
RUN_INFO = "generator.json"  # run_dir/generator.json: its tokenizer, token folder, class names, sampling


def load_tokenizer(directory: str | Path, vocab_size: int, device) -> VideoTokenizer:
    """The tokenizer, checked against the generator's vocabulary."""
    tok = VideoTokenizer.from_pretrained(directory).to(device).eval()
    if tok.codebook_size != vocab_size:
        raise ValueError(f"the tokenizer in {directory} has {tok.codebook_size} codes but the generator was trained on "
                         f"{vocab_size}: give the tokenizer the generator's tokens came from (--tokenizer)")
    return tok


def recorded_sampling(info: dict) -> dict:
    """Sampling defaults of a run: what its generator.json records under "sampling" (the settings of
    the training stage's sample videos), over ``SamplingConfig``'s (the paper's) with guidance 2.0."""
    paper = SamplingConfig()
    return {"temperature": paper.temperature, "top_k": paper.top_k, "top_p": paper.top_p, "cfg_scale": 2.0,
            **info.get("sampling", {})}


def add_sampling_arguments(ap: argparse.ArgumentParser) -> None:
    """``--cfg``, ``--temperature``, ``--top-k``, ``--top-p``, each defaulting to the run's own."""
    ap.add_argument("--cfg", type=float, default=None,
                    help="classifier-free guidance scale (class models; default: the run's, 2.0; 1 turns it off)")
    ap.add_argument("--temperature", type=float, default=None, help="default: the run's (1.0)")
    ap.add_argument("--top-k", type=int, default=None,
                    help="default: the run's, that is the training stage's --sample-top-k (paper: 16000)")
    ap.add_argument("--top-p", type=float, default=None,
                    help="default: the run's, that is the training stage's --sample-top-p (paper: 0.9)")


def resolve_sampling(args: argparse.Namespace, info: dict, condition: str) -> SamplingConfig:
    """The sampling options given on the command line over the run's recorded ones."""
    run_sampling = recorded_sampling(info)
    given = {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    for flag, value in (("--cfg", args.cfg), ("--temperature", args.temperature), ("--top-p", args.top_p)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number, got {value}")
    if condition == "class":
        cfg_scale = run_sampling["cfg_scale"] if args.cfg is None else args.cfg
    elif args.cfg is not None:
        raise ValueError(f"--cfg needs a class-conditional model; this one is conditioned on {condition!r}")
    else:
        cfg_scale = None
    return SamplingConfig(**{k: run_sampling[k] if v is None else v for k, v in given.items()}, cfg_scale=cfg_scale)


def load_run(run: str | Path, device, tokenizer: str | None = None) -> tuple[NBPTransformer, VideoTokenizer, dict]:
    run = Path(run)
    if not (run / GENERATOR_DIR).is_dir():
        raise FileNotFoundError(f"--run must be a generator run folder with {GENERATOR_DIR}/ "
                                f"(made by python -m nbp_ext.train nbp), got {run}")
    model = NBPTransformer.from_pretrained(run / GENERATOR_DIR).to(device).eval()
    info = {}
    if (run / RUN_INFO).is_file():
        try:
            info = json.loads((run / RUN_INFO).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{run / RUN_INFO}: not valid JSON ({str(e)[:80]})") from None
        if not isinstance(info, dict):
            raise ValueError(f"{run / RUN_INFO}: must be a JSON object")
    tok_dir = tokenizer or info.get("tokenizer")
    if not tok_dir:
        raise FileNotFoundError(f"no tokenizer recorded in {run / RUN_INFO}: give --tokenizer")
    expected = info.get("tokenizer_sha256")  # the tokenizer the generator's tokens came from
    if expected and (Path(tok_dir) / WEIGHTS_FILE).is_file() and file_sha256(Path(tok_dir) / WEIGHTS_FILE) != expected:
        raise ValueError(f"tokenizer {tok_dir} is not the one this generator was trained on ({run / RUN_INFO} records "
                         "another SHA-256 of its weights)")
    return model, load_tokenizer(tok_dir, model.config.vocab_size, device), info


@torch.no_grad()
def decode(tokenizer: VideoTokenizer, codes: torch.Tensor) -> torch.Tensor:
    """Codes (B, T', H', W') -> videos (B, 3, T, H, W) in [-1, 1]."""
    return tokenizer.decode(codes).clamp(-1, 1)


def side_by_side(videos: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (3, T, H, B * W), a 2-pixel gap between videos."""
    B, C, T, H, W = videos.shape
    gap = torch.full((B, C, T, H, 2), -1.0, device=videos.device)
    return torch.cat([videos, gap], dim=-1).permute(1, 2, 3, 0, 4).reshape(C, T, H, B * (W + 2))


@torch.no_grad()
def write_sample_grid(model: NBPTransformer, tokenizer: VideoTokenizer, path: Path, val_set=None,
                      cfg_scale: float | None = 2.0, top_k: int = 16000, top_p: float = 0.9, seed: int = 0,
                      max_videos: int = GRID_VIDEOS) -> Path:
    """One video per class in class order (the first ``max_videos`` classes; all 12 of the synthetic
    set) or per held-out context, side by side in one file."""
    mcfg = model.config
    was_training = model.training
    model.eval()
    sampling = SamplingConfig(top_k=top_k, top_p=top_p)
    if mcfg.condition == "class":
        cond = torch.arange(min(mcfg.num_classes, max_videos))
        sampling.cfg_scale = cfg_scale
        codes = generate(model, cond, seed=seed, sampling=sampling)
    elif mcfg.condition == "frames" and val_set is not None and len(val_set):
        n = min(len(val_set), max_videos)
        grids = torch.stack([val_set[i]["codes"] for i in range(n)]).to(next(model.parameters()).device)
        context, _ = model.split_codes(grids)
        codes = generate(model, context, seed=seed, sampling=sampling)
    else:
        codes = generate(model, num_videos=max_videos if mcfg.condition == "none" else 4, seed=seed, sampling=sampling)
    model.train(was_training)
    return write_videos(path, decode(tokenizer, codes))


def write_videos(path: str | Path, videos: torch.Tensor, scale: int = 0) -> Path:
    """Videos (B, 3, T, H, W) in [-1, 1] side by side into one file; ``scale`` 0: enlarged to at least
    128 pixels high for viewing, else that whole-number enlargement (1: native size)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 0:
        raise ValueError(f"--scale must be an int >= 0 (0: enlarge to 128 pixels high, 1: native), got {scale!r}")
    return write_video(path, to_uint8_frames(side_by_side(videos).cpu()), fps=8,
                       scale=scale or viewing_scale(videos.shape[3]))


def _context_codes(model: NBPTransformer, tokenizer: VideoTokenizer, path: str, device) -> torch.Tensor:
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
    ap.add_argument("--run", required=True, help="generator run folder (runs/nbp-<time>)")
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
