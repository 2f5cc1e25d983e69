"""The compiled extension: what was built, and the error a missing or stale build gives."""

import sys

import pytest
import torch

import nbp_ext
from nbp_ext import _ext
import procs


def test_build_info_describes_the_build():
    info = nbp_ext.build_info()
    assert set(info) >= {"cuda", "cuda_archs", "openmp", "compiler", "torch_version", "torch_target", "ops_version"}
    # built on the stable ABI: against any torch >= the target, loading under this one
    assert info["stable_abi"] is True
    assert info["torch_target"] == _ext.TORCH_TARGET
    assert _ext._major_minor(info["torch_version"]) >= _ext._major_minor(info["torch_target"])
    assert _ext._major_minor(torch.__version__) >= _ext._major_minor(info["torch_target"])
    assert info["ops_version"] == _ext.OPS_VERSION
    assert info["compiler"]
    if info["cuda"]:
        assert info["cuda_archs"]
    assert hasattr(torch.ops.nbp, "attention_fwd") and hasattr(torch.ops.nbp, "sample_block")


def test_errors_raised_in_cpp_carry_their_numbers():
    """An argument check inside the extension streams sizes into its message. A module that carries its
    own static libstdc++ (which setup.py refuses) printed them empty here and crashed elsewhere; run in
    a child process so that a crash fails this test instead of the whole run."""
    code = (
        "import torch\n"
        "from nbp_ext.ops import sample_block\n"
        "calls = [lambda: sample_block(torch.zeros(2, 4, 30), 0, 0, guidance_scale=2.0, uncond_logits=torch.zeros(2, 4, 31)),\n"
        "         lambda: sample_block(torch.zeros(2, 4, 0), 0, 0)]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as e:\n"
        "        print(e)\n"
    )
    r = procs.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert any("[2, 4, 30]" in line and "[2, 4, 31]" in line for line in lines), r.stdout
    assert any("vocabulary" in line and line.rstrip().endswith("got 0") for line in lines), r.stdout


def test_missing_extension_says_how_to_rebuild():
    """With _C hidden, using an op raises ExtensionNotBuiltError with the rebuild command."""
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'nbp_ext._C': raise ImportError('hidden for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import torch\n"
        "from nbp_ext.ops import block_causal_attention, block_causal_attention_ref\n"
        "q = torch.randn(1, 1, 4, 8)\n"
        "block_causal_attention_ref(q, q, q, 2)\n"  # the reference still works
        "try:\n"
        "    block_causal_attention(q, q, q, 2)\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = procs.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ExtensionNotBuiltError")
    assert "pip install ." in out and "--no-build-isolation" in out


def _load_with_fake_module(attrs: str) -> str:
    """Runs _ext.load() in a child where nbp_ext._C is a stand-in module with `attrs`; returns stdout."""
    code = (
        "import sys, types\n"
        "import nbp_ext\n"
        "fake = types.ModuleType('nbp_ext._C')\n"
        f"{attrs}\n"
        "sys.modules['nbp_ext._C'] = fake\n"
        "nbp_ext._C = fake\n"
        "from nbp_ext import _ext\n"
        "try:\n"
        "    _ext.load()\n"
        "    print('loaded')\n"
        "except ImportError as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    return procs.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_module_from_an_older_source_tree_is_stale():
    """A module built before the bindings moved to the stable ABI (ops version 1, built for one exact
    torch) is refused with the rebuild command."""
    out = _load_with_fake_module(
        "fake.OPS_VERSION = 1\n"
        "fake.build_info = lambda: {'torch_version': '2.13.0+cpu', 'ops_version': 1}"
    )
    assert out.startswith("ExtensionNotBuiltError") and "stale (ops version 1" in out, out
    assert "pip install ." in out


def test_module_built_for_another_stable_target_is_stale():
    out = _load_with_fake_module(
        f"fake.OPS_VERSION = {_ext.OPS_VERSION}\n"
        "fake.build_info = lambda: {'torch_target': '2.9', 'ops_version': 2}"
    )
    assert out.startswith("ExtensionNotBuiltError") and "stable-ABI target torch 2.9" in out, out


def test_torch_older_than_the_target_is_refused_before_loading():
    _ext.check_torch_version(torch.__version__)
    _ext.check_torch_version("3.0.0")
    with pytest.raises(_ext.ExtensionNotBuiltError, match=rf"needs torch >= {_ext.TORCH_TARGET}.*torch 2\.9\.1\+cu128 is installed"):
        _ext.check_torch_version("2.9.1+cu128")
