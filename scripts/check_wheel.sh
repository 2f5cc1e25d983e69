#!/usr/bin/env bash
# Builds the wheel as a user would (`python -m build --wheel`, isolated), installs it into a second,
# fresh virtual environment with its own torch, and runs the op tests there from outside the source
# tree, so they exercise the installed package and its stable-ABI module, not the checkout.
#   bash scripts/check_wheel.sh            # TORCH_SPEC="torch==2.13.0" PYTHON=python3
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q build
"$work/tools/bin/python" -m build --wheel --outdir "$work/dist" . > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
grep '^nbp:' "$work/build.log" || true
wheel=$(ls "$work"/dist/nbp-*.whl)
echo "check_wheel: built $(basename "$wheel")"

"$PYTHON" -m venv "$work/env"
"$work/env/bin/python" -m pip install -q "$TORCH_SPEC"
"$work/env/bin/python" -m pip install -q pytest scipy "$wheel"
mkdir "$work/run" && cd "$work/run"
"$work/env/bin/python" - <<'PY'
import nbp_ext, torch
assert nbp_ext.__file__.startswith(__import__("sys").prefix), f"nbp_ext imported from {nbp_ext.__file__}"
print("check_wheel: torch", torch.__version__, "build", nbp_ext.build_info())
PY
"$work/env/bin/python" -m pytest -q -p no:cacheprovider \
  "$root"/python_tests/test_build.py "$root"/python_tests/test_attention.py \
  "$root"/python_tests/test_attention_errors.py "$root"/python_tests/test_sampling.py \
  "$root"/python_tests/test_cuda_kernels.py
