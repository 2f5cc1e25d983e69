"""PSNR and SSIM of videos in [-1, 1], per clip (SSIM per frame and channel, then averaged)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y (B, C, T, H, W) in [-1, 1] -> (B,) PSNR in dB on the [0, 1] scale."""
    a, b = (x.float().clamp(-1, 1) + 1) / 2, (y.float().clamp(-1, 1) + 1) / 2
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


def _gaussian(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2).float() ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y (B, C, T, H, W) in [-1, 1] -> (B,) mean SSIM (11x11 Gaussian window, sigma 1.5, range [0, 1])."""
    b, c, t, h, w = x.shape
    a = ((x.float().clamp(-1, 1) + 1) / 2).transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, C, H, W)
    d = ((y.float().clamp(-1, 1) + 1) / 2).transpose(1, 2).reshape(b * t, c, h, w)
    size = min(11, h, w)
    size -= 1 - size % 2  # odd window that fits the frame
    g = _gaussian(size).to(a.device)
    def blur(z):
        z = F.conv2d(z, g.view(1, 1, 1, -1).expand(c, 1, 1, size), groups=c)
        return F.conv2d(z, g.view(1, 1, -1, 1).expand(c, 1, size, 1), groups=c)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_d = blur(a), blur(d)
    var_a = blur(a * a) - mu_a ** 2
    var_d = blur(d * d) - mu_d ** 2
    cov = blur(a * d) - mu_a * mu_d
    s = ((2 * mu_a * mu_d + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_d ** 2 + c1) * (var_a + var_d + c2))
    return s.reshape(b, t, -1).mean(dim=(1, 2))
