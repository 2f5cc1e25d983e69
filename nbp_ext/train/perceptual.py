"""Perceptual (LPIPS-style) loss on VGG16 features, with weights read from a local file only.

``vgg_weights``: a ``.pth`` or ``.safetensors`` state dict with torchvision's VGG16 key names
(``features.0.weight`` ...). ``lin_weights`` (optional): LPIPS linear-layer weights (``lin0.model.1.weight``
... ``lin4``); without them every channel weighs the same. Nothing is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

# VGG16 "features": conv channel counts with "M" for max-pooling; taps after relu1_2 ... relu5_3.
_VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_TAPS = (3, 8, 15, 22, 29)  # indices in ``features`` of the ReLUs whose outputs are compared
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)


def vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
            c = v
    return nn.Sequential(*layers)


def load_state_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file must exist locally (nothing is downloaded), got {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)  # no code runs: tensors and containers only
    except Exception as e:  # a truncated file, a foreign pickle, a random file: each its own exception type
        raise ValueError(f"{path}: not a weights file this command reads (a state dict in .pth or .safetensors; "
                         f"{type(e).__name__})") from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


class PerceptualLoss(nn.Module):
    def __init__(self, vgg_weights: str | os.PathLike, lin_weights: str | os.PathLike | None = None):
        super().__init__()
        self.features = vgg16_features()
        state = load_state_file(vgg_weights)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing = set(self.features.state_dict()) - set(feats)
        if missing:
            raise ValueError(f"vgg_weights {vgg_weights} must hold torchvision VGG16 keys 'features.N.weight'; "
                             f"missing {sorted(missing)[:4]}")
        self.features.load_state_dict(feats)
        channels = [64, 128, 256, 512, 512]
        lins = [torch.ones(1, c, 1, 1) / c for c in channels]
        if lin_weights is not None:
            lstate = load_state_file(lin_weights)
            for i in range(5):
                key = f"lin{i}.model.1.weight"
                if key not in lstate:
                    raise ValueError(f"lin_weights {lin_weights} must hold LPIPS keys lin0..lin4.model.1.weight; missing {key}")
                lins[i] = lstate[key].float().reshape(1, channels[i], 1, 1)
        for i, w in enumerate(lins):
            self.register_buffer(f"lin{i}", w)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always in eval mode
        return super().train(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = (x - _SHIFT.to(x)) / _SCALE.to(x)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAPS:
                out.append(h)
                if len(out) == len(_TAPS):
                    break
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images x, y (N, 3, H, W) in [-1, 1] -> mean distance (scalar)."""
        total = x.new_zeros(())
        for i, (fx, fy) in enumerate(zip(self._taps(x), self._taps(y))):
            fx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)
            fy = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
            total = total + ((fx - fy) ** 2 * getattr(self, f"lin{i}")).sum(1).mean()
        return total


def video_perceptual(loss: PerceptualLoss, x: torch.Tensor, y: torch.Tensor, frames: int) -> torch.Tensor:
    """Perceptual loss on ``frames`` random frames of each clip x, y (B, 3, T, H, W)."""
    b, c, t, h, w = x.shape
    idx = torch.randperm(t, device=x.device)[:max(1, min(frames, t))]
    xs = x[:, :, idx].transpose(1, 2).reshape(-1, c, h, w)  # (B*frames, 3, H, W)
    ys = y[:, :, idx].transpose(1, 2).reshape(-1, c, h, w)
    return loss(xs, ys)
