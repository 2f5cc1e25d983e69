// Argument checks at the op boundary: every failure names the argument and what was expected.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include "../kernels/common.h"

#define NBP_CHECK(cond, ...) TORCH_CHECK_VALUE(cond, __VA_ARGS__)

namespace nbp {

inline DType to_kernel_dtype(const at::Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::kFloat32;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    default:
      TORCH_CHECK_TYPE(false, name, " must be float32, float16 or bfloat16, got ", t.scalar_type());
  }
  return DType::kFloat32;
}

inline void check_rank(const at::Tensor& t, int64_t rank, const char* name, const char* layout) {
  NBP_CHECK(t.dim() == rank, name, " must have ", rank, " dimensions ", layout, ", got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn) {
  NBP_CHECK(a.device() == b.device(), an, " is on ", a.device(), " but ", bn, " is on ", b.device(),
            ": all tensors must be on one device");
}

inline void check_status(Status s, const char* op) {
  TORCH_CHECK(s == Status::kOk, "nbp::", op, " failed: ", status_name(s));
}

}  // namespace nbp
