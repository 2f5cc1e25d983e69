"""The build backend: which torch the extension is compiled against, and when an isolated build
environment gets one of its own."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "build_backend"))
import nbp_backend  # noqa: E402
import torch_for_build  # noqa: E402

from nbp_ext import _ext  # noqa: E402


def test_target_is_read_from_the_package():
    assert torch_for_build.torch_target() == _ext.TORCH_TARGET
    assert torch_for_build.version_tuple("2.13.0+cpu") == (2, 13)
    assert torch_for_build.version_tuple("2.14.0a0+git1234") == (2, 14)


def test_the_installed_torch_is_used_and_none_fetched(monkeypatch):
    found = torch_for_build.find_torch()
    assert found is not None and found["version"] == torch.__version__
    assert Path(found["dir"], "include", "torch", "csrc", "stable", "library.h").exists()
    monkeypatch.delenv("NBP_BUILD_TORCH", raising=False)
    assert nbp_backend._torch_requirement() == []


def test_without_torch_the_build_gets_a_pinned_one(monkeypatch):
    monkeypatch.delenv("NBP_BUILD_TORCH", raising=False)
    monkeypatch.setattr(nbp_backend, "find_torch", lambda: None)
    assert nbp_backend._torch_requirement() == [nbp_backend.BUILD_TORCH]
    assert nbp_backend.BUILD_TORCH.startswith("torch==")
    monkeypatch.setenv("NBP_BUILD_TORCH", "torch==2.13.0+cpu")
    assert nbp_backend._torch_requirement() == ["torch==2.13.0+cpu"]
