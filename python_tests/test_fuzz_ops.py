"""The ops under property-based fuzzing (Hypothesis), in a child process: a kernel crash fails this
test with the child's output instead of ending the test run."""

import sys
from pathlib import Path

import pytest

import hypothesis  # noqa: F401,E402  (a test dependency: pip install -e ".[test]")
import procs
HERE = Path(__file__).resolve().parent


def test_ops_survive_random_calls():
    proc = procs.run([sys.executable, str(HERE / "fuzz" / "ops_fuzz.py"), "600"], capture_output=True, text=True,
                          timeout=900, cwd=HERE.parent)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "no crash, no silent wrong result" in proc.stdout
