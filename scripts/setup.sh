#!/usr/bin/env bash
# Creates a virtual environment (default .venv) and builds nbp into it:
#   bash scripts/setup.sh            # CPU torch 2.13.0
#   TORCH_SPEC="torch==2.13.0" VENV=.venv bash scripts/setup.sh
# On a machine with a GPU, give a CUDA build of torch in TORCH_SPEC (e.g. TORCH_SPEC=torch) and the
# CUDA kernels are built too (nvcc must be on PATH). This is the developer set-up: an editable install
# compiled against the torch installed here (no isolation, so rebuilds are incremental). The op
# bindings use PyTorch's stable ABI, so the module keeps loading after a torch upgrade (>= the target,
# nbp_ext/_ext.py TORCH_TARGET); a user installs with plain `pip install .`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
"$VENV/bin/python" -m pip install -q setuptools wheel pybind11 cmake ninja numpy
"$VENV/bin/python" -m pip install --no-build-isolation -e ".[test]"
"$VENV/bin/python" -c "import nbp_ext; print('nbp build:', nbp_ext.build_info())"
