"""Causal 3D convolution building blocks of the video tokenizer.

Every block is causal in time: the output at frame ``t`` depends on input frames ``<= t`` only.
Convolutions pad on the left in time (repeating the first frame) and normalization is per frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def run_layers(layers: nn.Sequential, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """``layers(x)``; with ``checkpointed`` (and gradients on) each layer's activations are recomputed in
    the backward pass instead of kept (activation checkpointing)."""
    for layer in layers:
        x = checkpoint(layer, x, use_reentrant=False) if checkpointed and torch.is_grad_enabled() else layer(x)
    return x


class CausalConv3d(nn.Module):
    """3D convolution padded on the left in time (first frame repeated) and symmetrically in space."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int] = (3, 3, 3),
                 stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        kt, kh, kw = kernel
        self.time_pad = kt - 1
        self.space_pad = (kw // 2, kw // 2, kh // 2, kh // 2)
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T, H, W)
        if self.time_pad:
            first = x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1)
            x = torch.cat([first, x], dim=2)  # (B, C, T + kt - 1, H, W)
        x = F.pad(x, self.space_pad + (0, 0))
        return self.conv(x)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over (C, H, W) of each frame separately, so normalization never mixes time steps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T, H, W)
        b, c, t, h, w = x.shape
        y = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W)
        y = super().forward(y)
        return y.reshape(b, t, c, h, w).transpose(1, 2)  # (B, C, T, H, W)


def norm(channels: int) -> FrameGroupNorm:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return FrameGroupNorm(groups, channels)


class ResBlock(nn.Module):
    """norm -> SiLU -> conv, twice, plus a (1x1x1 projected) shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = norm(c_in)
        self.conv1 = CausalConv3d(c_in, c_out)
        self.norm2 = norm(c_out)
        self.conv2 = CausalConv3d(c_out, c_out)
        self.skip = nn.Conv3d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided causal convolution: space /2, and time /2 when ``time`` (T = 1 + 2k -> 1 + k)."""

    def __init__(self, c_in: int, c_out: int, time: bool):
        super().__init__()
        self.time = time
        stride_t = 2 if time else 1
        self.conv = CausalConv3d(c_in, c_out, kernel=(3, 3, 3), stride=(stride_t, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Depth-to-space upsampling: space x2, and time x2 minus the first frame when ``time`` (1 + k -> 1 + 2k)."""

    def __init__(self, c_in: int, c_out: int, time: bool):
        super().__init__()
        self.time = time
        self.factor_t = 2 if time else 1
        self.c_out = c_out
        self.conv = CausalConv3d(c_in, c_out * self.factor_t * 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        ft, c = self.factor_t, self.c_out
        y = self.conv(x)  # (B, C*ft*2*2, T, H, W)
        y = y.reshape(b, c, ft, 2, 2, t, h, w)
        y = y.permute(0, 1, 5, 2, 6, 3, 7, 4)  # (B, C, T, ft, H, 2, W, 2)
        y = y.reshape(b, c, t * ft, h * 2, w * 2)  # (B, C, T*ft, 2H, 2W)
        if self.time:
            y = y[:, :, ft - 1:]  # drop the extra frame made from the first one: 2T -> 2T - 1
        return y
