"""3D PatchGAN discriminator, hinge losses and the adaptive GAN weight (balanced against reconstruction)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchGAN3D(nn.Module):
    """Video (B, 3, T, H, W) -> patch logits (B, 1, T'', H'', W''); time /4 and space /8."""

    def __init__(self, channels: int = 64, in_channels: int = 3):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv3d(in_channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(c, 2 * c, 4, stride=2, padding=1), nn.GroupNorm(min(32, 2 * c), 2 * c), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * c, 4 * c, (3, 4, 4), stride=(1, 2, 2), padding=1), nn.GroupNorm(min(32, 4 * c), 4 * c),
            nn.LeakyReLU(0.2),
            nn.Conv3d(4 * c, 1, 3, padding=1),
        )

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def adaptive_weight(rec_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                    max_weight: float = 1e4) -> torch.Tensor:
    """||d rec / d last|| / ||d gan / d last||: scales the GAN gradient to the reconstruction's size."""
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (rec_grad.norm() / (g_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()
