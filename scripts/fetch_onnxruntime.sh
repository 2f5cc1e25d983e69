#!/usr/bin/env bash
# Puts ONNX Runtime's C/C++ headers and library where run_engine's CMake looks for them:
#   build/third_party/onnxruntime/include/*.h   from Debian 13's libonnxruntime-dev (headers only)
#   build/third_party/onnxruntime/lib/libonnxruntime.so{,.1}   the library of the onnxruntime wheel
# The wheel ships no headers; the Debian package's headers (API 21) work with the wheel's newer
# library because the C API only grows. Runs on Debian 12 as root (or a user who may run apt-get
# with a private state folder) with apt and PyPI reachable; nothing is installed system-wide.
#   PYTHON=/path/to/python bash scripts/fetch_onnxruntime.sh
# Set ORT_DEB to a downloaded libonnxruntime-dev .deb to skip the download.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python || command -v python3)}
DEST=build/third_party/onnxruntime
WORK=build/third_party/apt
ORT_DEV_VERSION=${ORT_DEV_VERSION:-1.21.0+dfsg-1}

mkdir -p "$DEST/include" "$DEST/lib" "$WORK"

# 1. Headers: download (not install) libonnxruntime-dev from Debian 13 with a private apt state.
if [ -z "${ORT_DEB:-}" ]; then
  mkdir -p "$WORK/state/lists/partial" "$WORK/cache/archives/partial" "$WORK/etc"
  echo "deb [trusted=yes] http://deb.debian.org/debian trixie main" > "$WORK/etc/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$PWD/$WORK/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
            -o "Dir::State=$PWD/$WORK/state" -o "Dir::Cache=$PWD/$WORK/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$WORK" && { apt-get "${APT_OPTS[@]}" download "libonnxruntime-dev=$ORT_DEV_VERSION" -qq \
     || { echo "fetch_onnxruntime: $ORT_DEV_VERSION is gone; taking the current libonnxruntime-dev" >&2;
          apt-get "${APT_OPTS[@]}" download libonnxruntime-dev -qq; }; })
  ORT_DEB=$(ls "$WORK"/libonnxruntime-dev_*.deb | head -n 1)
fi
rm -rf "$WORK/extract"
dpkg -x "$ORT_DEB" "$WORK/extract"
cp "$WORK"/extract/usr/include/onnxruntime/*.h "$DEST/include/"
[ -f "$DEST/include/onnxruntime_cxx_api.h" ] || { echo "fetch_onnxruntime: $ORT_DEB has no onnxruntime_cxx_api.h" >&2; exit 1; }

# 2. Library: the onnxruntime wheel's, copied so the build does not depend on where the venv lives.
if ! ORT_LIB=$("$PYTHON" - <<'PY'
import glob, os, onnxruntime
libs = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.1*")))
print(libs[-1] if libs else "")
PY
); then
  echo "fetch_onnxruntime: '$PYTHON' cannot import onnxruntime: run '$PYTHON -m pip install onnxruntime' first" >&2
  exit 1
fi
[ -n "$ORT_LIB" ] || { echo "fetch_onnxruntime: the onnxruntime wheel has no libonnxruntime.so.1*" >&2; exit 1; }
cp "$ORT_LIB" "$DEST/lib/"
# Execution-provider libraries (onnxruntime-gpu: CUDA, TensorRT) load from the same folder.
for provider in "$(dirname "$ORT_LIB")"/libonnxruntime_providers_*.so; do
  [ -e "$provider" ] && cp "$provider" "$DEST/lib/"
done
ln -sf "$(basename "$ORT_LIB")" "$DEST/lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$DEST/lib/libonnxruntime.so"
echo "fetch_onnxruntime: headers from $(basename "$ORT_DEB"), library $(basename "$ORT_LIB") -> $DEST"
