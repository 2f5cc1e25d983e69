// A TensorRT engine (plan file) loads only in the TensorRT major version that built it, so the
// manifest records that version (key tensorrt_version) and the TensorRT backend compares it with
// the library it runs on before deserializing anything. Plain C++: testable without TensorRT.
#pragma once

#include <cstdint>
#include <string>

#include "manifest.h"
#include "status.h"

namespace nbp::rt {

// "11.4.0.106" -> 11; -1 where the text does not start with a number.
int trt_major(const std::string& version);

// getInferLibVersion()'s number, (major * 100 + minor) * 100 + patch -> "11.4.0".
std::string trt_version_string(int32_t lib_version);

// Ok when the manifest's engines were built by TensorRT `running` (as "major.minor.patch") of the
// same major version, else ExitCode::kEngine with a message saying to rebuild them.
Status check_engine_version(const Manifest& m, const std::string& running);

}  // namespace nbp::rt
