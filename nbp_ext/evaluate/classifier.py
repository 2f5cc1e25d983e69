"""A small video classifier trained on the real clips of a data set, the judge of generated videos.

Its class predictions say whether a generated video shows the class it was asked for, and its
pooled features give the Fréchet distance between generated and real videos (``frechet.py``). It
is trained here, on the same data as the tokenizer and generator, because no pretrained video
network can be downloaded; it is not I3D, so its distances are not FVD and compare runs on the same
data set only.

Architecture: two per-frame convolutions (space /4), then two space-time 3x3x3 convolutions (space
/8 in all), GroupNorm and GELU after each, mean over time and space -> features (4 * width) ->
linear class logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..models.pretrained import PretrainedMixin


@dataclass
class ClipClassifierConfig:
    num_classes: int = 12
    frames: int = 9  # the clip shape it was trained on, checked on every input
    size: int = 48
    width: int = 16  # channels of the first convolution; features are 4 * width wide

    def __post_init__(self):
        for name in ("num_classes", "frames", "size", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.size % 8:
            raise ValueError(f"size must be a multiple of 8 (the classifier downsamples space by 8), got {self.size}")


def _norm_act(channels: int) -> list[nn.Module]:
    return [nn.GroupNorm(4, channels), nn.GELU()]


class ClipClassifier(nn.Module, PretrainedMixin):
    config_class = ClipClassifierConfig
    model_type = "nbp-clip-classifier"

    def __init__(self, config: ClipClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            nn.Conv3d(3, w, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1)), *_norm_act(w),
            nn.Conv3d(w, 2 * w, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), *_norm_act(2 * w),
            nn.Conv3d(2 * w, 4 * w, 3, stride=(1, 2, 2), padding=1), *_norm_act(4 * w),
            nn.Conv3d(4 * w, 4 * w, 3, padding=1), *_norm_act(4 * w),
        )
        self.head = nn.Linear(4 * w, config.num_classes)

    def check_input(self, video: torch.Tensor) -> None:
        c = self.config
        if video.dim() != 5 or tuple(video.shape[1:]) != (3, c.frames, c.size, c.size):
            raise ValueError(f"video must be (B, 3, {c.frames}, {c.size}, {c.size}) in [-1, 1], the clip shape the "
                             f"classifier was trained on; got {tuple(video.shape)}")

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """Videos (B, 3, T, H, W) in [-1, 1] -> pooled features (B, 4 * width)."""
        self.check_input(video)
        return self.body(video).mean(dim=(2, 3, 4))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes)."""
        return self.head(self.features(video))

    @torch.no_grad()
    def predict(self, video: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (B, F), predicted classes (B,)) in batches, on the classifier's device, returned on the CPU."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        feats, preds = [], []
        for i in range(0, video.shape[0], batch_size):
            f = self.features(video[i : i + batch_size].to(device).float())
            feats.append(f.cpu())
            preds.append(self.head(f).argmax(dim=1).cpu())
        self.train(was_training)
        if not feats:  # no videos (a process's empty share)
            return torch.zeros(0, self.head.in_features), torch.zeros(0, dtype=torch.int64)
        return torch.cat(feats), torch.cat(preds)
