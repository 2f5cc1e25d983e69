"""Configuration and named sizes of the video tokenizer."""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCHS = ("cnn", "patch")
PADDINGS = ("zeros", "replicate")


@dataclass
class VideoTokenizerConfig:
    """Video tokenizer: time /4 (first frame alone), an FSQ code book, and one of two architectures.

    ``arch="cnn"``: causal 3D CNN, space /8. ``channel_mult`` has one entry per resolution level;
    the first three levels halve space and ``temporal_down`` says which of them also halve time
    (two of them, for /4).
    ``arch="patch"``: patch tokenizer (``tokenizer_patch.py``), space /``patch_size``; a linear map
    started from PCA plus a convolutional correction of ``patch_width`` channels and
    ``patch_depth`` 3x3 layers (the decoder's correction has 2 x patch_depth + 1), padded with
    ``patch_padding``: "zeros" (the dataclass default, which configs saved before the option load
    with) or "replicate" (the named size "patch"), which codes a flat area alike up to the frame edge.
    """

    arch: str = "cnn"

    base_channels: int = 64
    channel_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    temporal_down: tuple[bool, ...] = (False, True, True)
    fsq_levels: tuple[int, ...] = (8, 8, 8, 5, 5, 5)
    in_channels: int = 3
    patch_size: int = 4
    patch_width: int = 128
    patch_depth: int = 1
    patch_padding: str = "zeros"

    def __post_init__(self):
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.temporal_down = tuple(bool(t) for t in self.temporal_down)
        self.fsq_levels = tuple(int(l) for l in self.fsq_levels)
        if len(self.channel_mult) != 4:
            raise ValueError(f"channel_mult must have 4 entries (3 down levels and the middle), got {self.channel_mult}")
        if len(self.temporal_down) != 3 or sum(self.temporal_down) != 2:
            raise ValueError(f"temporal_down must have 3 entries with exactly 2 True (time /4), got {self.temporal_down}")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.patch_size < 1 or self.patch_width < 1 or self.patch_depth < 0:
            raise ValueError(f"patch_size and patch_width must be >= 1 and patch_depth >= 0, got "
                             f"{self.patch_size}, {self.patch_width}, {self.patch_depth}")
        if self.patch_padding not in PADDINGS:
            raise ValueError(f"patch_padding must be one of {PADDINGS}, got {self.patch_padding!r}")
        if self.base_channels < 1 or self.num_res_blocks < 0:
            raise ValueError(f"base_channels must be >= 1 and num_res_blocks >= 0, got {self.base_channels}, {self.num_res_blocks}")

    @property
    def spatial_factor(self) -> int:
        return 8 if self.arch == "cnn" else self.patch_size

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    def check_clip(self, frames: int, size: int) -> None:
        """The data options a clip of ``frames`` x ``size`` x ``size`` needs for this tokenizer."""
        f = self.spatial_factor
        if (frames - 1) % 4 != 0 or size % f != 0:
            raise ValueError(f"--frames must be 1 + 4k and --size a multiple of {f}, got {frames} and {size}")

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """(T, H, W) of a clip -> (T', H', W') of its codes."""
        f = self.spatial_factor
        return (1 + (frames - 1) // 4, height // f, width // f)


TOKENIZER_SIZES: dict[str, dict] = {
    # Under a second per training step of 4 clips of 17x64x64 on a 2-core CPU.
    "tiny": dict(base_channels=8, channel_mult=(1, 2, 4, 8), num_res_blocks=1),
    "small": dict(base_channels=32, channel_mult=(1, 2, 2, 4), num_res_blocks=1),
    "base": dict(base_channels=64, channel_mult=(1, 2, 2, 4), num_res_blocks=2),
    # Near the paper's tokenizer (about 370M parameters).
    "paper": dict(base_channels=144, channel_mult=(1, 2, 2, 4), num_res_blocks=4),
    # Patch tokenizer, space /4, started from PCA: the CPU default (recognisable shapes in minutes).
    "patch": dict(arch="patch", patch_size=4, patch_width=128, patch_depth=1, patch_padding="replicate"),
}
