#include "trt_version.h"

#include <cctype>

namespace nbp::rt {

int trt_major(const std::string& version) {
  int major = 0;
  size_t i = 0;
  for (; i < version.size() && i < 4 && std::isdigit(static_cast<unsigned char>(version[i])); ++i) major = major * 10 + (version[i] - '0');
  if (i == 0 || (i < version.size() && version[i] != '.')) return -1;
  return major;
}

std::string trt_version_string(int32_t lib_version) {
  return std::to_string(lib_version / 10000) + "." + std::to_string(lib_version / 100 % 100) + "." +
         std::to_string(lib_version % 100);
}

Status check_engine_version(const Manifest& m, const std::string& running) {
  const int built = trt_major(m.tensorrt_version);
  if (built >= 0 && built == trt_major(running)) return Status::Ok();
  return Err(ExitCode::kEngine, m.path, ": the engines were built with TensorRT ",
             m.tensorrt_version.empty() ? std::string("(version not recorded)") : m.tensorrt_version,
             ", this run_engine runs TensorRT ", running, ", which cannot load them; rebuild them with python export/to_trt.py "
             "--precision ", m.precision, " on this machine (or use --backend onnxruntime)");
}

}  // namespace nbp::rt
