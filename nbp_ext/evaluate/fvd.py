"""FVD: the Fréchet distance between the I3D features of two sets of videos (Unterthiner et al. 2018),
measured by one protocol, ``FVDProtocol``, written out in docs/fvd.md with the source of every number.

Each video goes through the same steps, real or generated:
  uint8 0..255 (generated videos are rounded to it, as saved videos are)
  -> its first ``frames`` frames (16)
  -> each frame resized, shorter side first, then center-cropped (square frames are resized whole):
     to ``pre_size`` when the protocol has one (K600: 64x64, as MAGVIT), then to 224x224; bilinear,
     align_corners=False, no antialiasing
  -> [-1, 1] (x / 127.5 - 1)
  -> I3D(video, rescale=False, resize=False, return_features=True): the 400 Kinetics logits before the
     softmax, averaged over time (StyleGAN-V's convention, the TF-Hub model's "Mean" output)
and the distance is ``frechet.frechet_distance`` of the two feature sets, in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.video_writer import to_uint8
from .i3d import INPUT_SIZE, NUM_CLASSES
from .i3d_weights import first_line


@dataclass(frozen=True)
class FVDProtocol:
    name: str = "default"
    frames: int = 16  # the first frames of each video fed to I3D
    size: int = INPUT_SIZE  # I3D's input, square
    pre_size: int | None = None  # frames resized to this first (K600: 64), then to size
    # what the published numbers used, checked against the run and reported when they differ:
    num_videos: int | None = None  # generated videos (and as many real ones)
    reference: str = "val"  # real clips of the run's data set: "val" (held out) or "train"
    dataset: str | None = None  # the run's DataConfig.dataset
    video_size: int | None = None  # generated resolution
    condition: str | None = None  # the generator's condition
    context_frames: int = 0  # video frames given to a frame-prediction model (part of `frames`)

    def __post_init__(self):
        if self.frames < 1 or self.size < 1 or (self.pre_size is not None and self.pre_size < 1):
            raise ValueError(f"frames, size and pre_size must be >= 1, got {self.frames}, {self.size}, {self.pre_size}")
        if self.reference not in ("val", "train"):
            raise ValueError(f"reference must be 'val' or 'train', got {self.reference!r}")


DEFAULT = FVDProtocol()
PRESETS = {
    # UCF-101 class-conditional: 10 000 videos vs the training set, 16 of 17 frames at 128x128
    "ucf101": FVDProtocol("ucf101", num_videos=10_000, reference="train", dataset="ucf101", video_size=128,
                          condition="class"),
    # K600 frame prediction: 5 given frames + 11 predicted, judged at 64x64 (MAGVIT), 50 000 videos
    "k600": FVDProtocol("k600", pre_size=64, num_videos=50_000, reference="val", dataset="k600", video_size=128,
                        condition="frames", context_frames=5),
}


def describe(p: FVDProtocol) -> str:
    pre = f"{p.pre_size}x{p.pre_size}, then " if p.pre_size else ""
    return (f"FVD protocol {p.name}: first {p.frames} frames, resized to {pre}{p.size}x{p.size} (bilinear), "
            f"[-1, 1], I3D logits before the softmax ({NUM_CLASSES}-d), Fréchet distance in float64")


def resize_square(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): shorter side to ``size`` (bilinear, align_corners=False), then
    the center crop."""
    h, w = frames.shape[-2:]
    if (h, w) != (size, size):
        scale = size / min(h, w)
        th, tw = max(size, math.ceil(h * scale)), max(size, math.ceil(w * scale))
        frames = F.interpolate(frames, size=(th, tw), mode="bilinear", align_corners=False)
        top, left = (th - size) // 2, (tw - size) // 2
        frames = frames[..., top : top + size, left : left + size]
    return frames


def prepare(videos: torch.Tensor, protocol: FVDProtocol) -> torch.Tensor:
    """uint8 (B, 3, T, H, W), or float in [-1, 1] (rounded to uint8 first) -> I3D's input
    (B, 3, min(T, frames), size, size) in [-1, 1]."""
    if videos.dim() != 5 or videos.shape[1] != 3:
        raise ValueError(f"videos must be (B, 3, T, H, W), got {tuple(videos.shape)}")
    if videos.dtype != torch.uint8:
        videos = to_uint8(videos)
    x = videos[:, :, : protocol.frames].float()
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, 3, H, W)
    if protocol.pre_size:
        frames = resize_square(frames, protocol.pre_size)
    frames = resize_square(frames, protocol.size) / 127.5 - 1
    return frames.reshape(b, t, c, protocol.size, protocol.size).transpose(1, 2).contiguous()  # (B, 3, T, S, S)


@torch.no_grad()
def i3d_features(detector, videos: torch.Tensor, protocol: FVDProtocol, batch_size: int = 8,
                 progress: bool = False, desc: str = "I3D") -> torch.Tensor:
    """Videos (N, 3, T, H, W) -> their I3D features (N, 400) in float64 on the CPU."""
    device = next(detector.parameters()).device
    out = [torch.zeros(0, NUM_CLASSES, dtype=torch.float64)]
    for i in tqdm(range(0, videos.shape[0], batch_size), desc=desc, unit="batch", disable=not progress):
        x = prepare(videos[i : i + batch_size], protocol).to(device)
        try:
            f = detector(x, rescale=False, resize=False, return_features=True)
        except RuntimeError as e:
            raise ValueError(f"the I3D network failed on videos of shape {tuple(x.shape)}: {first_line(e)}") from None
        if not isinstance(f, torch.Tensor) or tuple(f.shape) != (x.shape[0], NUM_CLASSES):
            got = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"the I3D network must return (B, {NUM_CLASSES}) features, got {got}")
        out.append(f.double().cpu())
    return torch.cat(out)


def protocol_gaps(p: FVDProtocol, *, videos: int, frames: int, dataset: str, size: int, condition: str,
                  context: int = 0) -> list[str]:
    """How a measurement differs from the published setting of ``p`` (empty: none found); ``context``:
    the video frames a frame-prediction model is given."""
    gaps = []
    if p.num_videos and videos < p.num_videos:
        gaps.append(f"{videos} generated videos, the protocol {p.num_videos}")
    if frames < p.frames:
        gaps.append(f"videos of {frames} frames, the protocol {p.frames}")
    if p.dataset and dataset != p.dataset:
        gaps.append(f"data set {dataset}, the protocol {p.dataset}")
    if p.video_size and size != p.video_size:
        gaps.append(f"videos of {size}x{size}, the protocol {p.video_size}x{p.video_size}")
    if p.condition and condition != p.condition:
        gaps.append(f"a {condition}-conditioned generator, the protocol {p.condition}")
    elif condition == "frames" and p.context_frames and context != p.context_frames:
        gaps.append(f"{context} given frames, the protocol {p.context_frames}")
    return gaps
