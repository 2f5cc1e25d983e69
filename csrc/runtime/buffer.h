// Memory owned by RAII handles: host memory (64-byte aligned) and, in CUDA builds, device memory.
// A Buffer frees what it holds exactly once; it moves but never copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "status.h"

namespace nbp::rt {

enum class MemoryKind { kHost, kDevice };

class Buffer {
 public:
  using Deleter = void (*)(void*);

  Buffer() = default;
  Buffer(void* ptr, size_t bytes, MemoryKind kind, Deleter deleter)
      : ptr_(ptr), bytes_(bytes), kind_(kind), deleter_(deleter) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(ptr_, o.ptr_);
      std::swap(bytes_, o.bytes_);
      std::swap(kind_, o.kind_);
      std::swap(deleter_, o.deleter_);
    }
    return *this;
  }
  ~Buffer() { reset(); }

  void reset() {
    if (ptr_ && deleter_) deleter_(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
    deleter_ = nullptr;
  }

  void* data() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }
  MemoryKind kind() const { return kind_; }
  bool empty() const { return ptr_ == nullptr; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  MemoryKind kind_ = MemoryKind::kHost;
  Deleter deleter_ = nullptr;
};

// Zero-filled, 64-byte aligned host memory; `what` names the buffer in an out-of-memory message.
Status alloc_host(size_t bytes, const char* what, Buffer* out);

}  // namespace nbp::rt
