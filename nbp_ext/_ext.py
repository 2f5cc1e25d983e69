"""Loads the compiled extension nbp_ext._C once, with an error that says how to rebuild it.

The op bindings use PyTorch's stable ABI with TORCH_TARGET as the target, so one build loads under
every torch from TORCH_TARGET on, whichever torch it was compiled against; an older torch is refused
here, before the module is loaded, with a message instead of an unresolved symbol.
"""

from __future__ import annotations

import functools

import torch

# Must match NBP_OPS_VERSION in csrc/torch/module.cpp.
OPS_VERSION = 2
# The stable-ABI target (major.minor): the oldest torch the extension loads under. setup.py reads it
# from here (for TORCH_TARGET_VERSION and the torch requirement); build_info() reports the built one.
TORCH_TARGET = "2.10"

REBUILD_HINT = (
    "rebuild it with `pip install .` (or `pip install --no-build-isolation .` against the installed torch; "
    "`python setup.py build_ext --inplace` in a source checkout)"
)


class ExtensionNotBuiltError(ImportError):
    """nbp_ext._C is missing, stale, or cannot load under the installed torch."""


loaded = False  # set once nbp_ext._C is imported and checked; read by the op wrappers


def _major_minor(version: str) -> tuple[int, int]:
    """"2.13.0+cpu" -> (2, 13); "2.14.0a0+git..." -> (2, 14)."""
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def check_torch_version(version: str = torch.__version__) -> None:
    """Raise ExtensionNotBuiltError if torch `version` is older than the stable-ABI target."""
    if _major_minor(version) < _major_minor(TORCH_TARGET):
        raise ExtensionNotBuiltError(
            f"nbp_ext._C needs torch >= {TORCH_TARGET} (its stable-ABI target) but torch {version} is installed; "
            f"upgrade torch (`pip install 'torch>={TORCH_TARGET}'`)"
        )


@functools.lru_cache(maxsize=None)
def load():
    """Import nbp_ext._C, which registers torch.ops.nbp.*; raise ExtensionNotBuiltError if unusable."""
    global loaded
    check_torch_version()
    try:
        from nbp_ext import _C  # noqa: PLC0415
    except ImportError as err:
        raise ExtensionNotBuiltError(f"the nbp compiled extension nbp_ext._C cannot be loaded ({err}); {REBUILD_HINT}") from err
    if getattr(_C, "OPS_VERSION", None) != OPS_VERSION:
        raise ExtensionNotBuiltError(
            f"nbp_ext._C is stale (ops version {getattr(_C, 'OPS_VERSION', None)}, this package expects "
            f"{OPS_VERSION}); {REBUILD_HINT}"
        )
    info = _C.build_info()
    if info.get("torch_target") != TORCH_TARGET:
        raise ExtensionNotBuiltError(
            f"nbp_ext._C is stale (built for the stable-ABI target torch {info.get('torch_target')}, this package "
            f"expects {TORCH_TARGET}); {REBUILD_HINT}"
        )
    loaded = True
    return _C


def build_info() -> dict:
    """What the compiled extension contains: cuda, cuda_archs, openmp, compiler, cpu_flags, torch_version
    (the torch it was compiled against), torch_target (the oldest torch it loads under), stable_abi."""
    return dict(load().build_info())


def cuda_available() -> bool:
    """True when the CUDA kernels were built and a GPU is visible."""
    return bool(build_info()["cuda"]) and torch.cuda.is_available()
