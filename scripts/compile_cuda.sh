#!/usr/bin/env bash
# Compiles every CUDA source with nvcc alone (no GPU, no torch needed), for sm_80 and sm_90 by
# default, so a CUDA syntax or template error fails CI on machines without a GPU.
#   NBP_CUDA_ARCHS="80;90" bash scripts/compile_cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-nvcc}
if ! command -v "$NVCC" >/dev/null; then
  echo "compile_cuda: nvcc not found; set NVCC or install the CUDA toolkit" >&2
  exit 1
fi
gencode=()
IFS=';' read -ra archs <<< "${NBP_CUDA_ARCHS:-80;90}"
for a in "${archs[@]}"; do gencode+=(-gencode "arch=compute_${a},code=sm_${a}"); done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
shopt -s nullglob
files=(csrc/kernels/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "compile_cuda: no .cu files found" >&2; exit 1; }
pids=()
for f in "${files[@]}"; do
  "$NVCC" -std=c++17 -O3 -Icsrc/kernels "${gencode[@]}" -Werror all-warnings -c "$f" \
    -o "$out/$(basename "$f").o" &
  pids+=($!)
  # two at a time: nvcc is memory- and CPU-hungry
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
echo "compile_cuda: ${#files[@]} CUDA files compiled for sm_${archs[*]}"

# The CUDA torch bindings (csrc/torch/*_cuda.cpp): a syntax check against the installed torch's
# headers and the CUDA toolkit's, so they stay compilable on machines without a CUDA build of torch.
PYTHON=${PYTHON:-.venv/bin/python}
if [ -x "$PYTHON" ] && torch_inc=$("$PYTHON" -c 'import torch.utils.cpp_extension as c; print(" ".join(c.include_paths()))' 2>/dev/null); then
  cuda_inc=""
  for d in "${CUDA_HOME:-}" "$(dirname "$(readlink -f "$(command -v "$NVCC")")")/.." /usr/local/cuda /usr/local/cuda-*; do
    if [ -n "$d" ] && [ -f "$d/include/cuda_runtime_api.h" ]; then cuda_inc="$d/include"; break; fi
  done
  [ -n "$cuda_inc" ] || { echo "compile_cuda: cuda_runtime_api.h not found; set CUDA_HOME" >&2; exit 1; }
  shim="$out/shim/c10/cuda/impl"
  mkdir -p "$shim" && : > "$shim/cuda_cmake_macros.h"  # generated only in CUDA builds of torch
  incs=()
  for d in $torch_inc; do incs+=(-I "$d"); done
  for f in csrc/torch/*_cuda.cpp; do
    "${CXX:-c++}" -std=c++17 -fsyntax-only -Wno-c++20-extensions "${incs[@]}" -I "$cuda_inc" -I "$out/shim" "$f"
  done
  echo "compile_cuda: CUDA bindings pass a syntax check against torch's headers"
fi
