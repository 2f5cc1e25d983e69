"""Embedded synthetic video set: shapes and digits moving on textured backgrounds.

Each clip is drawn from its own seed, so a clip is the same on every machine and in every worker.
The class is (shape kind, motion kind): 4 shapes (square, triangle, cross, digit) x 3 motions
(bounce: straight lines with bounces off the borders, rotate: spinning in place, scale: pulsing
size) = 12 classes. The motion is deterministic physics, so the first frames fix the rest of the clip.
Train and validation clips come from disjoint seed streams and never coincide.

Two switches make an easier set for models that must learn in minutes, with the same shape, digit,
motion and position for the same seed: ``background="plain"`` draws a flat background of the base
colour instead of the texture, and ``palette=True`` moves the object's and the background's
colours to the nearest of a few fixed ones (``OBJECT_PALETTE``, ``BACKGROUND_PALETTE``).
``object_scale`` multiplies the objects' size (their paths keep clear of the borders by the new size).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

SHAPES = ("square", "triangle", "cross", "digit")
MOTIONS = ("bounce", "rotate", "scale")
CLASS_NAMES = tuple(f"{s}-{m}" for s in SHAPES for m in MOTIONS)
SPLITS = {"train": 0, "val": 1}
BACKGROUNDS = ("textured", "plain")
# Fixed colours of palette=True: bright objects, darker backgrounds (RGB in [0, 1]).
OBJECT_PALETTE = np.array([[0.95, 0.2, 0.2], [0.2, 0.9, 0.25], [0.25, 0.4, 0.95], [0.95, 0.9, 0.2],
                           [0.2, 0.9, 0.9], [0.9, 0.3, 0.9]], dtype=np.float64)
BACKGROUND_PALETTE = np.array([[0.2, 0.2, 0.25], [0.45, 0.3, 0.2], [0.2, 0.35, 0.25], [0.3, 0.25, 0.45],
                               [0.5, 0.5, 0.45], [0.25, 0.4, 0.5]], dtype=np.float64)

# 5x7 bitmaps of the digits 0-9, one string per row.
_DIGITS = [
    ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    ["11111", "00010", "00100", "00010", "00001", "10001", "01110"],
    ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
]
DIGIT_BITMAPS = np.array([[[c == "1" for c in row] for row in d] for d in _DIGITS], dtype=np.float32)  # (10, 7, 5)


@dataclass
class SyntheticConfig:
    num_clips: int = 2000
    frames: int = 17
    size: int = 128
    split: str = "train"
    seed: int = 0
    background: str = "textured"
    palette: bool = False
    object_scale: float = 1.0

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {self.split!r}")
        if not 0.25 <= self.object_scale <= 2.0:
            raise ValueError(f"object_scale must be in [0.25, 2], got {self.object_scale}")
        if self.frames < 1 or self.size < 8 or self.num_clips < 1:
            raise ValueError(f"frames must be >= 1, size >= 8 and num_clips >= 1, got {self.frames}, {self.size}, {self.num_clips}")


def _shape_mask(kind: str, u: np.ndarray, v: np.ndarray, px: float, digit: int) -> np.ndarray:
    """Coverage in [0, 1] of a unit-size shape at object coordinates (u, v); ``px`` is one pixel in those units."""
    if kind == "square":
        d = np.maximum(np.abs(u), np.abs(v)) - 0.8
    elif kind == "triangle":
        # Equilateral triangle as the intersection of three half-planes.
        normals = [(0.0, 1.0), (0.866, -0.5), (-0.866, -0.5)]
        d = np.max([nu * u + nv * v - 0.5 for nu, nv in normals], axis=0)
    elif kind == "cross":
        bar1 = np.maximum(np.abs(u) - 0.9, np.abs(v) - 0.3)
        bar2 = np.maximum(np.abs(u) - 0.3, np.abs(v) - 0.9)
        d = np.minimum(bar1, bar2)
    else:
        d = (0.5 - _digit_bilinear(digit, u, v)) * 0.26  # about one bitmap cell (0.26 units) per unit of value
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _digit_bilinear(digit: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear sample of the 5x7 bitmap stretched over [-0.65, 0.65] x [-0.9, 0.9]; 0.5 is the stroke edge."""
    bmp = np.pad(DIGIT_BITMAPS[digit], 1)  # (9, 7) with an empty border
    x = (u / 0.65 + 1) / 2 * 5 + 0.5  # bitmap column, with border offset
    y = (-v / 0.9 + 1) / 2 * 7 + 0.5  # bitmap row (v points up)
    x = np.clip(x, 0, 6 - 1e-4)
    y = np.clip(y, 0, 8 - 1e-4)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    top = bmp[y0, x0] * (1 - fx) + bmp[y0, x0 + 1] * fx
    bottom = bmp[y0 + 1, x0] * (1 - fx) + bmp[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _nearest(colour: np.ndarray, palette: np.ndarray) -> np.ndarray:
    return palette[np.argmin(((palette - colour) ** 2).sum(axis=1))].copy()


def _background(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, plain: bool = False,
                palette: bool = False) -> np.ndarray:
    """Static textured background (H, W, 3) in [0, 1]: stripes, checkers or smooth blobs; with
    ``plain`` the flat base colour, with ``palette`` a base colour from BACKGROUND_PALETTE (the random
    draws are the same either way, so the rest of the clip is too)."""
    base = rng.uniform(0.15, 0.55, size=3)
    delta = rng.choice([-1, 1], size=3) * rng.uniform(0.05, 0.15, size=3)
    if palette:
        base = _nearest(base, BACKGROUND_PALETTE)
    other = np.clip(base + delta, 0, 1)
    kind = rng.integers(3)
    if kind == 0:
        angle, freq = rng.uniform(0, np.pi), rng.uniform(1.5, 4)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    elif kind == 1:
        n = rng.integers(2, 5)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
    else:
        t = np.zeros_like(xx)
        for _ in range(3):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.15, 0.4)
            t = t + np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        t = t / t.max()
    if plain:
        return np.broadcast_to(base, t.shape + (3,)).copy()
    return base * (1 - t[..., None]) + other * t[..., None]


def render_clip(seed_seq: np.random.SeedSequence, frames: int, size: int, background: str = "textured",
                palette: bool = False, object_scale: float = 1.0) -> tuple[np.ndarray, int]:
    """One clip as uint8 (T, H, W, 3) and its class index."""
    rng = np.random.default_rng(seed_seq)
    shape_id, motion_id = int(rng.integers(len(SHAPES))), int(rng.integers(len(MOTIONS)))
    label = shape_id * len(MOTIONS) + motion_id
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (H, W) each, y down
    background = _background(rng, xx, yy, plain=background == "plain", palette=palette)
    color = rng.uniform(0.0, 1.0, size=3)
    color[rng.integers(3)] = rng.uniform(0.85, 1.0)  # bright in one channel, stands out
    if palette:
        color = _nearest(color, OBJECT_PALETTE)
    digit = int(rng.integers(10))

    t = np.arange(frames, dtype=np.float32)[:, None, None]  # (T, 1, 1)
    radius = rng.uniform(0.16, 0.24) * object_scale
    angle0 = rng.uniform(0, 2 * np.pi)
    cx0, cy0 = rng.uniform(radius, 1 - radius, size=2)
    cx, cy, angle, scale = np.full_like(t, cx0), np.full_like(t, cy0), np.full_like(t, angle0), np.full_like(t, radius)
    if MOTIONS[motion_id] == "bounce":
        speed, heading = rng.uniform(0.025, 0.05), rng.uniform(0, 2 * np.pi)
        lo, span = radius, 1 - 2 * radius
        for arr, c0, vel in ((cx, cx0, speed * np.cos(heading)), (cy, cy0, speed * np.sin(heading))):
            p = (c0 - lo + vel * t) % (2 * span)  # reflect at the borders (triangle wave)
            arr[...] = lo + np.where(p > span, 2 * span - p, p)
    elif MOTIONS[motion_id] == "rotate":
        angle = angle0 + rng.choice([-1, 1]) * rng.uniform(0.15, 0.3) * t
    else:
        period = rng.uniform(8, 14)
        scale = radius * (1 + 0.45 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi)))

    dx, dy = (xx - cx) / scale, (cy - yy) / scale  # (T, H, W) object coordinates, v up
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    mask = _shape_mask(SHAPES[shape_id], u, v, px=1.0 / (size * scale), digit=digit)[..., None]  # (T, H, W, 1)
    video = background[None] * (1 - mask) + color * mask  # (T, H, W, 3)
    return np.round(video * 255).astype(np.uint8), label


class SyntheticVideoDataset(Dataset):
    """Items: ``{"video": float32 (3, T, H, W) in [-1, 1], "label": int, "video_id": int, "start": 0}``."""

    num_classes = len(CLASS_NAMES)
    class_names = CLASS_NAMES

    def __init__(self, config: SyntheticConfig | None = None, **kwargs):
        self.config = config or SyntheticConfig(**kwargs)

    def __len__(self) -> int:
        return self.config.num_clips

    def seed_sequence(self, index: int) -> np.random.SeedSequence:
        return np.random.SeedSequence([self.config.seed, SPLITS[self.config.split], index])

    def clip(self, index: int) -> tuple[np.ndarray, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"index must be in [0, {len(self)}), got {index}")
        return render_clip(self.seed_sequence(index), self.config.frames, self.config.size, self.config.background,
                           self.config.palette, self.config.object_scale)

    def __getitem__(self, index: int) -> dict:
        frames, label = self.clip(index)
        video = torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1  # (3, T, H, W)
        return {"video": video, "label": label, "video_id": index, "start": 0}
