"""PSNR and SSIM of predicted frames against the true continuation, frame by frame.

The synthetic set's motion is deterministic, so a held-out clip's continuation after its context
frames is known: it is the clip itself. Each predicted frame is scored with the project's PSNR and
SSIM (``nbp_ext/train/video_metrics.py``, the tokenizer stage's) on that frame alone, per video,
then averaged over the videos.
"""

from __future__ import annotations

import torch

from ..train.video_metrics import psnr, ssim


@torch.no_grad()
def per_frame_scores(pred: torch.Tensor, truth: torch.Tensor, first: int) -> dict:
    """Videos (N, 3, T, H, W) in [-1, 1] -> {"frames": [first .. T-1], "psnr": [...], "ssim": [...]},
    each the mean over the N videos of frame t's score, and their means over the frames."""
    if pred.shape != truth.shape or pred.dim() != 5:
        raise ValueError(f"pred and truth must be videos (N, 3, T, H, W) of one shape, got {tuple(pred.shape)} "
                         f"and {tuple(truth.shape)}")
    if not 0 <= first < pred.shape[2]:
        raise ValueError(f"first must be a frame index in [0, {pred.shape[2]}), got {first}")
    frames = list(range(first, pred.shape[2]))
    p = [float(psnr(pred[:, :, t : t + 1], truth[:, :, t : t + 1]).mean()) for t in frames]
    s = [float(ssim(pred[:, :, t : t + 1], truth[:, :, t : t + 1]).mean()) for t in frames]
    return {"frames": frames, "psnr_per_frame": p, "ssim_per_frame": s,
            "psnr": sum(p) / len(p), "ssim": sum(s) / len(s)}


def hold_last_frame(video: torch.Tensor, first: int) -> torch.Tensor:
    """The baseline that predicts no motion: frames from ``first`` on are frame ``first - 1`` again."""
    held = video.clone()
    held[:, :, first:] = video[:, :, first - 1 : first]
    return held
