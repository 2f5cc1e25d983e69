"""Which torch nbp's extension is compiled against, shared by setup.py and the build backend.

The bindings use only PyTorch's stable ABI, so any torch from the target version on serves to build
(its headers, and libtorch_cpu for the C shim's symbols) and the module loads under any torch from
the target on. We prefer, in order: the torch importable here (a --no-build-isolation build, or a
build environment that installed one), then the torch of the environment being installed into,
which an isolated pip build still runs from (pip's isolation is PYTHONPATH; `python -I` sees past it).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_QUERY = (
    "import json, os, torch\n"
    "print(json.dumps({'version': torch.__version__, 'cuda': torch.version.cuda,\n"
    "                  'dir': os.path.dirname(torch.__file__)}))\n"
)


def torch_target() -> str:
    """The stable-ABI target, "major.minor": TORCH_TARGET in nbp_ext/_ext.py (read, not imported)."""
    tree = ast.parse((ROOT / "nbp_ext" / "_ext.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TORCH_TARGET" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("nbp_ext/_ext.py defines no TORCH_TARGET")


def version_tuple(version: str) -> tuple[int, int]:
    """"2.13.0+cpu" -> (2, 13)."""
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _query(args: list[str]) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} if "-I" in args else None
    r = subprocess.run([sys.executable, *args, "-c", _QUERY], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def find_torch() -> dict | None:
    """{'version', 'cuda', 'dir', 'where'} of a torch new enough to build against, or None."""
    need = version_tuple(torch_target())
    for args, where in (([], "this environment"), (["-I"], "the environment being installed into")):
        info = _query(args)
        if info and version_tuple(info["version"]) >= need:
            info["where"] = where
            return info
    return None
