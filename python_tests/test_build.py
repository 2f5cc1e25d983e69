"""The compiled extension: what was built, and the error a missing or stale build gives."""

import subprocess
import sys

import torch

import nbp_ext
from nbp_ext import _ext


def test_build_info_describes_the_build():
    info = nbp_ext.build_info()
    assert set(info) >= {"cuda", "cuda_archs", "openmp", "compiler", "torch_version", "ops_version"}
    assert info["torch_version"] == torch.__version__
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
        "calls = [lambda: sample_block(torch.zeros(2, 4, 30), 0, 0, cfg_scale=2.0, uncond_logits=torch.zeros(2, 4, 31)),\n"
        "         lambda: sample_block(torch.zeros(2, 4, 0), 0, 0)]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except ValueError as e:\n"
        "        print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ExtensionNotBuiltError")
    assert "pip install --no-build-isolation ." in out
