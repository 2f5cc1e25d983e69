#!/usr/bin/env bash
# CI: the kernels (csrc/kernels), the op bindings and the C++ runtime built with AddressSanitizer and
# UndefinedBehaviorSanitizer in a scratch folder (the repo's own build and .venv are left alone), then
#   1. the CPU op tests (attention, attention errors, sampling) against the sanitized nbp_ext._C, and
#   2. one real generation with the sanitized run_engine on a tiny export made here.
# Any sanitizer report fails the step (UBSan halts on the first error; ASan always does).
#   bash scripts/sanitize.sh          # PYTHON=.venv/bin/python, KEEP=1 keeps the scratch folder
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
PY=${PYTHON:-$root/.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "sanitize: scratch folder $work" || trap 'rm -rf "$work"' EXIT
jobs=${NBP_BUILD_JOBS:-$(nproc)}
start=$(date +%s)

SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
GEN=(); command -v ninja > /dev/null && GEN=(-G Ninja)
PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
log() { echo "sanitize: $*"; }

# ---- 1. the build and the op tests ------------------------------------------------------------------
t=$(date +%s)
torch_dir=$("$PY" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
torch_ver=$("$PY" -c 'import torch; print(torch.__version__)')
target=$("$PY" -c 'import sys; sys.path.insert(0, "build_backend"); from torch_for_build import torch_target; print(torch_target())')
mkdir -p "$work/pkg"
cp -r nbp_ext "$work/pkg/"
find "$work/pkg/nbp_ext" \( -name '_C*.so' -o -name '__pycache__' \) -prune -exec rm -rf {} +
ort_args=()
[ -n "${ONNXRUNTIME_ROOT:-}" ] && ort_args=(-DONNXRUNTIME_ROOT="$ONNXRUNTIME_ROOT")
if [ -z "${ONNXRUNTIME_ROOT:-}" ] && [ ! -f build/third_party/onnxruntime/include/onnxruntime_cxx_api.h ]; then
  PYTHON="$PY" bash scripts/fetch_onnxruntime.sh
fi
# One tree for both, so the kernels are compiled once. Build type "Sanitize" has no flags of its own:
# -O1 -g1 here, while the kernels keep their -O3 and the runtime its -O2. NBP_CPU_NATIVE=OFF (generic
# x86-64): with -march=native attention_cpu.cpp alone takes ~110 s to compile sanitized, 19 s without;
# the AVX-512-only branches (sampling_cpu.cpp, cpu_math.h) are therefore not covered here.
cmake -S . -B "$work/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Sanitize "-DCMAKE_CXX_FLAGS=-O1 -g1 $SAN" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$work/pkg/nbp_ext" -DPython_EXECUTABLE="$PY" \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DNBP_TORCH_DIR="$torch_dir" -DNBP_TORCH_TARGET="$target" \
  -DNBP_TORCH_VERSION="$torch_ver" -DNBP_WITH_CUDA=OFF -DNBP_CPU_NATIVE=OFF -DNBP_BUILD_RUNTIME=ON -DNBP_WITH_TENSORRT=OFF "${ort_args[@]}" \
  > "$work/build.log" 2>&1 \
  && cmake --build "$work/build" --target _C run_engine -j "$jobs" >> "$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; log "the sanitized build failed"; exit 1; }
log "built nbp_ext._C and run_engine with $SAN in $(( $(date +%s) - t )) s"

t=$(date +%s)
mkdir -p "$work/run"
(
  cd "$work/run"
  export PYTHONPATH="$work/pkg" LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0:abort_on_error=0
  "$PY" - "$work/pkg" <<'PY'
import sys, nbp_ext
assert nbp_ext.__file__.startswith(sys.argv[1]), f"nbp_ext imported from {nbp_ext.__file__}, not the sanitized build"
print("sanitize: op tests use", nbp_ext.__file__, nbp_ext.build_info())
PY
  log "op tests under ASan+UBSan: test_attention.py test_attention_errors.py test_sampling.py"
  "$PY" -m pytest -q -p no:cacheprovider -x \
    "$root"/python_tests/test_attention.py "$root"/python_tests/test_attention_errors.py \
    "$root"/python_tests/test_sampling.py 2>&1 | tee "$work/ops.log"
)
if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$work/ops.log"; then
  log "sanitizer report in the op tests"; exit 1
fi
log "op tests clean in $(( $(date +%s) - t )) s"

# ---- 2. the runtime ---------------------------------------------------------------------------

t=$(date +%s)
"$PY" - "$work/export" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "python_tests")
from run_engine_helpers import exported
out, *_ = exported(Path(sys.argv[1]))
print("sanitize: tiny export at", out)
PY
out=$(ls -d "$work"/export/*/engines)
log "run_engine under ASan+UBSan: --class 3 --seed 100 --num-videos 2 (class-conditional, guidance)"
set +e
ASAN_OPTIONS=detect_leaks=1 NBP_RUN_ENGINE="$work/build/csrc/runtime/run_engine" ./run_engine --threads 2 --engines "$out" \
  --class 3 --seed 100 --num-videos 2 --output "$work/v.y4m" > "$work/engine.log" 2>&1
rc=$?
set -e
cat "$work/engine.log"
if [ "$rc" != 0 ] || grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$work/engine.log"; then
  log "run_engine failed (exit $rc) or a sanitizer reported"; exit 1
fi
[ -s "$work/v.y4m" ] || { log "run_engine wrote no video"; exit 1; }
log "run_engine clean in $(( $(date +%s) - t )) s"
log "all clean in $(( $(date +%s) - start )) s"
