"""Loads the compiled extension nbp_ext._C once, with an error that says how to rebuild it."""

from __future__ import annotations

import functools

import torch

# Must match NBP_OPS_VERSION in csrc/torch/module.cpp.
OPS_VERSION = 1

REBUILD_HINT = (
    "rebuild it against the installed torch with `pip install --no-build-isolation .` "
    "(or `python setup.py build_ext --inplace` in a source checkout)"
)


class ExtensionNotBuiltError(ImportError):
    """nbp_ext._C is missing, stale, or was built against another torch."""


loaded = False  # set once nbp_ext._C is imported and checked; read by the op wrappers


@functools.lru_cache(maxsize=None)
def load():
    """Import nbp_ext._C, which registers torch.ops.nbp.*; raise ExtensionNotBuiltError if unusable."""
    global loaded
    try:
        from nbp_ext import _C  # noqa: PLC0415
    except ImportError as err:
        raise ExtensionNotBuiltError(f"the nbp compiled extension nbp_ext._C cannot be loaded ({err}); {REBUILD_HINT}") from err
    info = _C.build_info()
    if getattr(_C, "OPS_VERSION", None) != OPS_VERSION:
        raise ExtensionNotBuiltError(
            f"nbp_ext._C is stale (ops version {getattr(_C, 'OPS_VERSION', None)}, this package expects "
            f"{OPS_VERSION}); {REBUILD_HINT}"
        )
    if info["torch_version"] != torch.__version__:
        raise ExtensionNotBuiltError(
            f"nbp_ext._C was built against torch {info['torch_version']} but torch {torch.__version__} is "
            f"installed; {REBUILD_HINT}"
        )
    loaded = True
    return _C


def build_info() -> dict:
    """What the compiled extension contains: cuda, cuda_archs, openmp, compiler, cpu_flags, torch_version."""
    return dict(load().build_info())


def cuda_available() -> bool:
    """True when the CUDA kernels were built and a GPU is visible."""
    return bool(build_info()["cuda"]) and torch.cuda.is_available()
