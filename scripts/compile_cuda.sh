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

# The CUDA torch bindings (csrc/torch/*_cuda.cpp) on PyTorch's stable ABI: compiled (not linked)
# against the installed torch's stable headers, as CMake builds them (USE_CUDA declares the C shim's
# CUDA entries, TORCH_TARGET_VERSION the stable-ABI target), so they stay compilable on machines
# without a CUDA build of torch. They include no CUDA header: the kernels take the stream as void*.
# -fvisibility=hidden as in the module build (torch::stable is a hidden namespace).
PYTHON=${PYTHON:-.venv/bin/python}
if [ -x "$PYTHON" ] && torch_dir=$("$PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null); then
  target=$(sed -n 's/^TORCH_TARGET = "\(.*\)"$/\1/p' nbp_ext/_ext.py)
  [ -n "$target" ] || { echo "compile_cuda: TORCH_TARGET not found in nbp_ext/_ext.py" >&2; exit 1; }
  target_hex=$(printf '0x%02x%02x000000000000' "${target%%.*}" "${target#*.}")
  py_inc=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  pybind_inc=$("$PYTHON" -c 'import pybind11; print(pybind11.get_include())')
  for f in csrc/torch/*_cuda.cpp; do
    "${CXX:-c++}" -std=c++17 -O1 -fvisibility=hidden -Wall -Werror -DUSE_CUDA -DTORCH_TARGET_VERSION="${target_hex}ULL" \
      -I "$torch_dir/include" -I "$pybind_inc" -I "$py_inc" -c "$f" -o "$out/$(basename "$f").o"
  done
  echo "compile_cuda: CUDA bindings compile against torch's stable-ABI headers (target torch $target)"
fi
