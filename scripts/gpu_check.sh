#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the CUDA path, runs the tests that exercise it and the GPU
# benchmarks, smoke-runs the pipeline on the GPU, and writes a dated result file
# bench/gpu_results-<date>.md whose tables go into docs/results/gpu.md.
#
#   bash scripts/gpu_check.sh                 # fresh .venv-gpu with a CUDA build of torch (pip)
#   PYTHON=python3 bash scripts/gpu_check.sh  # offline: the torch already installed for PYTHON,
#                                             # extension built in place (no venv, no downloads)
#
# Knobs: NBP_CUDA_ARCHS (default 80;90), GPU_CHECK_OUT (where the result file and logs go),
# GPU_CHECK_FULL=1 (the whole test suite instead of the GPU-relevant files),
# GPU_CHECK_BENCH=0 (no benchmarks), GPU_CHECK_ATTN_DTYPES (default "bfloat16 float32"),
# GPU_CHECK_PIPELINE_MIN (minutes for the pipeline smoke run,
# default 2; 0 skips it), GPU_CHECK_TRT_PRECISIONS (default "fp32 fp16 bf16": the precisions in which
# export/to_trt.py builds and times strongly typed TensorRT engines of the newest run, where the
# tensorrt package imports).
# Every step runs even when an earlier one fails; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 1; }
export NBP_CUDA=1
export NBP_CUDA_ARCHS=${NBP_CUDA_ARCHS:-80;90}
export PYTHONUNBUFFERED=1
outdir=${GPU_CHECK_OUT:-bench}
mkdir -p "$outdir"
out="$outdir/gpu_results-$(date +%Y-%m-%d).md"
failed=()

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
  echo "gpu_check: building in place against $("$PY" -c 'import torch; print(torch.__version__)')" >&2
  start=$(date +%s)
  if ! "$PY" setup.py -q build_ext --inplace > "$outdir/build.log" 2>&1; then
    tail -n 60 "$outdir/build.log" >&2
    echo "gpu_check: build failed (log: $outdir/build.log)" >&2
    exit 1
  fi
  echo "gpu_check: built in $(( $(date +%s) - start )) s" >&2
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export VENV=${VENV:-.venv-gpu}
  export TORCH_SPEC=${TORCH_SPEC:-torch}
  bash scripts/setup.sh || exit 1
  PY="$VENV/bin/python"
fi

# step NAME SECONDS CMD...: runs CMD under a time limit, its output to the result file.
step() {
  local name=$1 limit=$2
  shift 2
  echo "## $name"
  echo '```'
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1
  local rc=$?
  echo '```'
  echo "($name: exit $rc, $(( $(date +%s) - t0 )) s)"
  echo
  [ $rc -eq 0 ] || failed+=("$name")
}

if [ "${GPU_CHECK_FULL:-0}" = 1 ]; then
  tests=(python_tests)
else
  tests=(python_tests/test_cuda_kernels.py python_tests/test_build.py python_tests/test_attention.py
         python_tests/test_sampling.py python_tests/test_generator.py)
fi

{
  echo "# GPU check $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
  "$PY" -c "import torch, nbp_ext; print('torch', torch.__version__, 'cuda', torch.version.cuda); print(nbp_ext.build_info())"
  echo '```'
  echo
  step "tests" 420 "$PY" -m pytest "${tests[@]}" -q -rs -p no:cacheprovider
  if command -v compute-sanitizer >/dev/null; then
    step "memcheck" 150 compute-sanitizer --tool memcheck --error-exitcode 1 "$PY" scripts/cuda_memcheck.py
    step "racecheck" 150 compute-sanitizer --tool racecheck --error-exitcode 1 "$PY" scripts/cuda_memcheck.py --quick
  fi
  if [ "${GPU_CHECK_BENCH:-1}" = 1 ]; then
    for dt in ${GPU_CHECK_ATTN_DTYPES:-bfloat16 float32}; do
      step "attention $dt" 240 "$PY" bench/attention.py --device cuda --dtype "$dt" --repeat 20
    done
    step "attention bfloat16, a size that fills the GPU" 240 "$PY" bench/attention.py --device cuda \
      --dtype bfloat16 --repeat 20 --batch 8 --heads 16 --seq 4096
    step "head loss" 180 "$PY" bench/head_loss.py --device cuda --tokens 10240 --precision bf16 --repeat 10
    step "sampling" 120 "$PY" bench/sampling.py --device cuda --rows 256 4096 --repeat 20
    step "generate" 200 "$PY" bench/generate.py --device cuda --batch 1 8 --precision fp32 bf16 --repeat 3
    step "train step" 180 "$PY" bench/train_step.py --device cuda --no-compile --repeat 10 \
      --model small --vocab 64000 --grid 5 16 16 --batch 8
  fi
  minutes=${GPU_CHECK_PIPELINE_MIN:-2}
  if [ "$minutes" != 0 ]; then
    step "pipeline ($minutes min)" $(( ${minutes%.*} * 60 + 240 )) \
      "$PY" -m nbp_ext.train --time-limit "$minutes"
  fi
  # TensorRT engines of the newest run (the pipeline's) in each precision: to_trt.py prints each
  # engine's build time and milliseconds per run, and the TensorRT version it used.
  if "$PY" -c "import tensorrt" 2>/dev/null; then
    for p in ${GPU_CHECK_TRT_PRECISIONS:-fp32 fp16 bf16}; do
      step "tensorrt engines $p" 600 "$PY" export/to_trt.py --precision "$p" --output "$outdir/engines-$p"
    done
  else
    echo "(tensorrt engines: skipped, the tensorrt package does not import for $PY)"
  fi
  echo "failed steps: ${failed[*]:-none}"
} 2>&1 | tee "$out"
echo "gpu_check: results in $out"
grep -q "^failed steps: none$" "$out"
