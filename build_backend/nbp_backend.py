"""PEP 517 build backend: setuptools, plus a torch in the build environment only when none is at hand.

`pip install .` builds in an isolated environment. When the environment being installed into already
has a torch new enough for the stable-ABI target, the extension is compiled against that one (see
torch_for_build) and nothing is fetched: a CPU machine keeps its CPU torch, a GPU machine its CUDA
torch and so its CUDA kernels. Only when there is none does the build environment get one:
NBP_BUILD_TORCH if set (e.g. "torch==2.13.0+cpu" with a CPU index), else BUILD_TORCH, the release
the project is tested with, pinned so that pip resolves it from its cache or configured indexes.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every hook setuptools provides)

from torch_for_build import find_torch

BUILD_TORCH = "torch==2.13.0"


def _torch_requirement() -> list[str]:
    if os.environ.get("NBP_BUILD_TORCH"):
        return [os.environ["NBP_BUILD_TORCH"]]
    return [] if find_torch() else [BUILD_TORCH]


def get_requires_for_build_wheel(config_settings=None):
    return _setuptools.get_requires_for_build_wheel(config_settings) + _torch_requirement()


def get_requires_for_build_editable(config_settings=None):
    return _setuptools.get_requires_for_build_editable(config_settings) + _torch_requirement()
