"""Generated videos to files: decoding codes, putting videos side by side, the training stage's
grid of samples."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import to_uint8_frames, viewing_scale, write_video
from ..models import Generator, VideoTokenizer
from .loop import generate
from .sampling_config import SamplingConfig

GRID_VIDEOS = 12  # videos in a sample grid: every class of the synthetic set


@torch.no_grad()
def decode(tokenizer: VideoTokenizer, codes: torch.Tensor) -> torch.Tensor:
    """Codes (B, T', H', W') -> videos (B, 3, T, H, W) in [-1, 1]."""
    return tokenizer.decode(codes).clamp(-1, 1)


def side_by_side(videos: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) -> (3, T, H, B * W), a 2-pixel gap between videos."""
    B, C, T, H, W = videos.shape
    gap = torch.full((B, C, T, H, 2), -1.0, device=videos.device)
    return torch.cat([videos, gap], dim=-1).permute(1, 2, 3, 0, 4).reshape(C, T, H, B * (W + 2))


def write_videos(path: str | Path, videos: torch.Tensor, scale: int = 0) -> Path:
    """Videos (B, 3, T, H, W) in [-1, 1] side by side into one file; ``scale`` 0: enlarged to at least
    128 pixels high for viewing, else that whole-number enlargement (1: native size)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 0:
        raise ValueError(f"--scale must be an int >= 0 (0: enlarge to 128 pixels high, 1: native), got {scale!r}")
    return write_video(path, to_uint8_frames(side_by_side(videos).cpu()), fps=8,
                       scale=scale or viewing_scale(videos.shape[3]))


@torch.no_grad()
def write_sample_grid(model: Generator, tokenizer: VideoTokenizer, path: Path, val_set=None,
                      sampling: SamplingConfig | None = None, seed: int = 0, max_videos: int = GRID_VIDEOS) -> Path:
    """One video per class in class order (the first ``max_videos`` classes; all 12 of the synthetic
    set) or per held-out context, side by side in one file."""
    mcfg = model.config
    was_training = model.training
    model.eval()
    sampling = sampling or SamplingConfig()
    if mcfg.condition == "class":
        cond = torch.arange(min(mcfg.num_classes, max_videos))
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
