// Test driver for the TensorRT version check of run_engine, without TensorRT:
//   trt_version_check ENGINES_DIR RUNNING_VERSION
// loads ENGINES_DIR/manifest.json as run_engine does and checks its engines against a TensorRT
// of RUNNING_VERSION ("11.4.0"), printing run_engine's message and exit code on failure.
#include <cstdio>

#include "manifest.h"
#include "trt_version.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: trt_version_check ENGINES_DIR RUNNING_VERSION\n");
    return 2;
  }
  nbp::rt::Manifest m;
  nbp::rt::Status st = nbp::rt::load_manifest(argv[1], &m);
  if (st.ok()) st = nbp::rt::check_engine_version(m, argv[2]);
  if (!st.ok()) {
    std::fprintf(stderr, "run_engine: error: %s\n", st.message().c_str());
    return static_cast<int>(st.code());
  }
  std::printf("major %d: engines load\n", nbp::rt::trt_major(m.tensorrt_version));
  return 0;
}
