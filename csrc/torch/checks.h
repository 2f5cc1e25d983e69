// Argument checks at the op boundary, on PyTorch's stable ABI: every failure names the argument and
// what was expected. A failed value check throws std::invalid_argument and a failed type check
// pybind11::type_error, which torch.ops turns into Python's ValueError and TypeError (the stable ABI
// has no error types of its own; plain std::runtime_error would reach Python as RuntimeError).
#pragma once

#include <pybind11/pybind11.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>

#include <sstream>
#include <stdexcept>
#include <string>

#include "../kernels/common.h"

namespace nbp {

using torch::stable::Tensor;
using torch::headeronly::ScalarType;

// Joins the parts of a message with operator<<.
template <typename... Args>
std::string message(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

#define NBP_CHECK(cond, ...) \
  if (!(cond)) throw std::invalid_argument(::nbp::message(__VA_ARGS__))
#define NBP_CHECK_TYPE(cond, ...) \
  if (!(cond)) throw pybind11::type_error(::nbp::message(__VA_ARGS__))

// "[2, 4, 30]", as torch prints a shape.
inline std::string shape_of(const Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

inline bool same_shape(const Tensor& a, const Tensor& b) {
  if (a.dim() != b.dim()) return false;
  for (int64_t d = 0; d < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return true;
}

inline std::string device_of(const Tensor& t) {
  const torch::stable::Device d = t.device();
  std::string type;
  switch (d.type()) {
    case torch::headeronly::DeviceType::CPU: type = "cpu"; break;
    case torch::headeronly::DeviceType::CUDA: type = "cuda"; break;
    case torch::headeronly::DeviceType::Meta: type = "meta"; break;
    default: type = "device type " + std::to_string(static_cast<int>(d.type()));
  }
  return d.has_index() ? type + ":" + std::to_string(d.index()) : type;
}

inline DType to_kernel_dtype(const Tensor& t, const char* name) {
  switch (t.scalar_type()) {
    case ScalarType::Float: return DType::kFloat32;
    case ScalarType::Half: return DType::kFloat16;
    case ScalarType::BFloat16: return DType::kBFloat16;
    default:
      NBP_CHECK_TYPE(false, name, " must be float32, float16 or bfloat16, got ", t.scalar_type());
  }
  return DType::kFloat32;
}

inline void check_rank(const Tensor& t, int64_t rank, const char* name, const char* layout) {
  NBP_CHECK(t.dim() == rank, name, " must have ", rank, " dimensions ", layout, ", got shape ", shape_of(t));
}

inline void check_same_device(const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  NBP_CHECK(a.device() == b.device(), an, " is on ", device_of(a), " but ", bn, " is on ", device_of(b),
            ": all tensors must be on one device");
}

inline void check_status(Status s, const char* op) {
  if (s != Status::kOk) throw std::runtime_error(message("nbp::", op, " failed: ", status_name(s)));
}

// Last dimension contiguous, as the kernels require.
inline Tensor rows_contiguous(const Tensor& t) {
  return t.stride(t.dim() - 1) == 1 ? t : torch::stable::contiguous(t);
}

// A new contiguous tensor on t's device.
inline Tensor new_contiguous(const Tensor& like, std::initializer_list<int64_t> shape, ScalarType dtype) {
  const std::vector<int64_t> sizes(shape);
  return torch::stable::empty(sizes, dtype, std::nullopt, like.device());
}

inline Tensor empty_contiguous_like(const Tensor& t) {
  std::vector<int64_t> sizes(t.sizes().begin(), t.sizes().end());
  return torch::stable::empty(sizes, t.scalar_type(), std::nullopt, t.device());
}

}  // namespace nbp
