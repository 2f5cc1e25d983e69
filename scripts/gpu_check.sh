#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA path, runs the whole test suite (the CUDA tests
# included) and the GPU benchmarks, and writes a dated result file bench/gpu_results-<date>.md
# whose tables go into bench/RESULTS.md.
#   TORCH_SPEC=torch bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 1; }
export VENV=${VENV:-.venv-gpu}
export TORCH_SPEC=${TORCH_SPEC:-torch}
export NBP_CUDA=1
export NBP_CUDA_ARCHS=${NBP_CUDA_ARCHS:-80;90}
bash scripts/setup.sh
PY="$VENV/bin/python"
out="bench/gpu_results-$(date +%Y-%m-%d).md"
{
  echo "# GPU check $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c "import torch, nbp_ext; print('torch', torch.__version__, 'cuda', torch.version.cuda); print(nbp_ext.build_info())"
  echo '```'
  echo
  echo "## Tests"
  echo '```'
  "$PY" -m pytest python_tests -q -rs 2>&1 | tail -n 25
  echo '```'
  for dt in bfloat16 float16 float32; do
    "$PY" bench/attention.py --device cuda --dtype "$dt" --repeat 20
  done
  "$PY" bench/sampling.py --device cuda --rows 256 4096 --repeat 20
} 2>&1 | tee "$out"
echo "gpu_check: results in $out"
