// Stands in for engine_trt.cpp in builds without TensorRT.
#include "engine.h"

namespace nbp::rt {

bool trt_backend_built() { return false; }

Status make_trt_backend(const BackendOptions&, std::unique_ptr<Backend>*) {
  return Err(ExitCode::kUsage,
             "--backend tensorrt: this run_engine was built without TensorRT; rebuild with -DNBP_WITH_TENSORRT=ON on a "
             "machine with TensorRT 10 or 11 and CUDA (or use --backend onnxruntime)");
}

}  // namespace nbp::rt
