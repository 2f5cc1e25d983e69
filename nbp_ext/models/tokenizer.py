"""VideoTokenizer: encoder/decoder with an FSQ code book; a causal 3D CNN (MAGVIT-v2 family) or
the PCA-started patch tokenizer of ``tokenizer_patch.py``, chosen by ``config.arch``.

``encode``: video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H and W multiples of f (8 for the CNN,
            ``patch_size`` for the patch tokenizer) -> codes (B, 1 + k, H/f, W/f) int64 in [0, codebook_size).
``decode``: codes -> video (B, 3, T, H, W).
The first frame is encoded on its own and later frames in groups of 4; the code at latent frame t
depends on input frames <= 4t only.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .fsq import FSQ
from .pretrained import PretrainedMixin
from .registry import config_from_name
from .tokenizer_blocks import CausalConv3d, Downsample, ResBlock, Upsample, norm, run_layers
from .tokenizer_config import TOKENIZER_SIZES, VideoTokenizerConfig
from .tokenizer_patch import PatchDecoder, PatchEncoder, fit_pca


class Encoder(nn.Module):
    def __init__(self, cfg: VideoTokenizerConfig, out_channels: int):
        super().__init__()
        ch = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = CausalConv3d(cfg.in_channels, ch[0])
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [ResBlock(ch[i], ch[i]) for _ in range(cfg.num_res_blocks)]
            layers.append(Downsample(ch[i], ch[i + 1], time=cfg.temporal_down[i]))
        layers += [ResBlock(ch[3], ch[3]) for _ in range(cfg.num_res_blocks)]
        self.layers = nn.Sequential(*layers)
        self.norm_out = norm(ch[3])
        self.conv_out = CausalConv3d(ch[3], out_channels, kernel=(1, 1, 1))
        self.checkpointed = False  # activation checkpointing of each layer (set by the training loop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, T, H, W) -> (B, C, T', H/8, W/8)
        h = run_layers(self.layers, self.conv_in(x), self.checkpointed)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cfg: VideoTokenizerConfig, in_channels: int):
        super().__init__()
        ch = [cfg.base_channels * m for m in cfg.channel_mult]
        self.conv_in = CausalConv3d(in_channels, ch[3])
        layers: list[nn.Module] = [ResBlock(ch[3], ch[3]) for _ in range(cfg.num_res_blocks)]
        for i in reversed(range(3)):
            layers += [ResBlock(ch[i + 1], ch[i + 1]) for _ in range(cfg.num_res_blocks)]
            layers.append(Upsample(ch[i + 1], ch[i], time=cfg.temporal_down[i]))
        layers += [ResBlock(ch[0], ch[0]) for _ in range(cfg.num_res_blocks)]
        self.layers = nn.Sequential(*layers)
        self.norm_out = norm(ch[0])
        self.conv_out = CausalConv3d(ch[0], cfg.in_channels)
        self.checkpointed = False  # activation checkpointing of each layer (set by the training loop)

    @property
    def last_layer_weight(self) -> torch.Tensor:
        return self.conv_out.conv.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, C, T', H', W') -> (B, 3, T, 8H', 8W')
        h = run_layers(self.layers, self.conv_in(z), self.checkpointed)
        return self.conv_out(F.silu(self.norm_out(h)))


class VideoTokenizer(PretrainedMixin, nn.Module):
    config_class = VideoTokenizerConfig
    model_type = "nbp-video-tokenizer"

    def __init__(self, config: VideoTokenizerConfig | None = None):
        super().__init__()
        self.config = config or VideoTokenizerConfig()
        cfg = self.config
        self.quantizer = FSQ(cfg.fsq_levels)
        dim = self.quantizer.dim
        if cfg.arch == "patch":
            self.encoder = PatchEncoder(cfg.patch_size, cfg.patch_width, cfg.patch_depth, cfg.in_channels, dim,
                                        cfg.patch_padding)
            self.decoder = PatchDecoder(cfg.patch_size, cfg.patch_width, 2 * cfg.patch_depth + 1, dim, cfg.in_channels,
                                        cfg.patch_padding)
        else:
            self.encoder = Encoder(cfg, dim)
            self.decoder = Decoder(cfg, dim)

    @classmethod
    def from_name(cls, size: str, **overrides) -> "VideoTokenizer":
        return cls(config_from_name(TOKENIZER_SIZES, VideoTokenizerConfig, size, **overrides))

    def set_activation_checkpointing(self, enabled: bool) -> None:
        """Recompute each encoder and decoder layer in the backward pass instead of keeping its activations."""
        self.encoder.checkpointed = self.decoder.checkpointed = enabled

    def fsdp_units(self) -> list[nn.Module]:
        """The submodules sharded on their own under FSDP (the rest belongs to the root): the layers
        the forward pass calls one by one (``run_layers``), so that FSDP's gathering hooks run: the
        CNN's layers, or the patch tokenizer's correction layers that hold weights."""
        if self.config.arch == "patch":
            layers = [*self.encoder.correction, *self.decoder.correction]
        else:
            layers = [*self.encoder.layers, *self.decoder.layers]
        return [m for m in layers if any(True for _ in m.parameters())]

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def check_video(self, video: torch.Tensor) -> None:
        c, f = self.config.in_channels, self.config.spatial_factor
        if video.dim() != 5 or video.shape[1] != c:
            raise ValueError(f"video must have shape (B, {c}, T, H, W), got {tuple(video.shape)}")
        _, _, t, h, w = video.shape
        if (t - 1) % 4 != 0 or h % f != 0 or w % f != 0 or h == 0 or w == 0:
            raise ValueError(f"video must have T = 1 + 4k frames and H, W multiples of {f}, got T={t}, H={h}, W={w}")
        if not video.dtype.is_floating_point:
            raise TypeError(f"video must be a floating tensor with values in [-1, 1], got {video.dtype}")

    def init_from_data(self, videos) -> float | None:
        """Data-dependent start: the patch tokenizer fits its linear maps to the principal components
        of the patches of ``videos`` (an iterable of (B, 3, T, H, W) batches) and returns the
        share of variance they explain; the CNN has nothing to fit and returns None."""
        if self.config.arch != "patch":
            return None
        def checked():
            for video in videos:
                self.check_video(video)
                yield video
        return fit_pca(self.encoder, self.decoder, checked())

    def quantize(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video -> (quantized latents (B, C, T', H', W') with straight-through gradient, codes (B, T', H', W'))."""
        self.check_video(video)
        z = self.encoder(video)  # (B, C, T', H', W')
        q, codes = self.quantizer(z.permute(0, 2, 3, 4, 1))  # (B, T', H', W', C), (B, T', H', W')
        return q.permute(0, 4, 1, 2, 3), codes

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1] -> codes (B, T', H', W') int64."""
        return self.quantize(video)[1]

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, T', H', W') int -> video (B, 3, 1 + 4(T'-1), fH', fW'), roughly in [-1, 1]."""
        if codes.dim() != 4:
            raise ValueError(f"codes must have shape (B, T', H', W'), got {tuple(codes.shape)}")
        q = self.quantizer.indices_to_codes(codes.to(self.quantizer._basis.device))  # (B, T', H', W', C)
        dtype = next(self.parameters()).dtype
        return self.decoder(q.permute(0, 4, 1, 2, 3).to(dtype))

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video -> (reconstruction, codes); differentiable through the straight-through quantizer."""
        q, codes = self.quantize(video)
        return self.decoder(q), codes
