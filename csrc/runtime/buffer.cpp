#include "buffer.h"

#include <cstdlib>
#include <cstring>

namespace nbp::rt {

Status alloc_host(size_t bytes, const char* what, Buffer* out) {
  const size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (!p) return Err(ExitCode::kRuntime, "out of host memory allocating ", bytes, " bytes for ", what);
  std::memset(p, 0, rounded);
  *out = Buffer(p, bytes, MemoryKind::kHost, &std::free);
  return Status::Ok();
}

}  // namespace nbp::rt
