"""The block shapes the study compares, from next-token prediction to a whole latent frame.

Shapes are named by what they cover of a latent frame of H' x W' codes, so the same names fit any
grid: ``token`` (1, 1, 1) is next-token prediction (NTP), ``half-row`` (1, 1, W'/2), ``row``
(1, 1, W'), ``two-rows`` (1, 2, W'), ``half-frame`` (1, H'/2, W') and ``frame`` (1, H', W').

The paper's block-size curve (Fig. 7, 700M model on K600, 16 x 16 latent frames) gives the FVD of
blocks of 1, 16, 32, 64 and 256 tokens: one token, one row, two rows, four rows, a frame. A shape
here is compared with the paper's block of the same number of rows (``paper_fvd``).
"""

from __future__ import annotations

SHAPE_NAMES = ("token", "half-row", "row", "two-rows", "half-frame", "frame")
CLASS_SHAPES = ("token", "row")  # the class-conditional task: NTP against the row block
BASELINE = "token"  # what every block is compared with

# Paper, Fig. 7: block length on a 16 x 16 latent frame -> FVD on K600 (lower is better).
PAPER_FVD = {1: 29.0, 16: 25.5, 32: 32.1, 64: 43.7, 256: 67.0}
PAPER_SIDE = 16


def block_shape(name: str, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (bt, bh, bw) of shape ``name`` on a latent grid (T', H', W')."""
    _, h, w = grid
    shapes = {"token": (1, 1, 1), "half-row": (1, 1, w // 2), "row": (1, 1, w), "two-rows": (1, 2, w),
              "half-frame": (1, h // 2, w), "frame": (1, h, w)}
    if name not in shapes:
        raise ValueError(f"shape must be one of {SHAPE_NAMES}, got {name!r}")
    if h < 4 or w < 2 or h % 2 or w % 2:
        raise ValueError(f"the study's shapes need latent frames of even height >= 4 and even width, got {h} x {w}")
    return shapes[name]


def block_arg(shape: tuple[int, int, int]) -> str:
    """The generator stage's --block value."""
    return ",".join(str(x) for x in shape)


def paper_fvd(shape: tuple[int, int, int], grid: tuple[int, int, int]) -> float | None:
    """The paper's FVD for the block of the same rows (or the token, or the frame); None where the
    paper has no such block (half a row)."""
    _, h, w = grid
    bt, bh, bw = shape
    if shape == (1, 1, 1):
        return PAPER_FVD[1]
    if bt != 1 or bw != w:
        return None
    return PAPER_FVD.get(PAPER_SIDE * PAPER_SIDE if bh == h else PAPER_SIDE * bh)
