// The current CUDA stream of a device, from torch's C shim (stable across torch releases), so the
// kernels run in order with the surrounding torch work without linking c10_cuda.
#pragma once

#ifndef USE_CUDA
#error "compile the CUDA bindings with -DUSE_CUDA: it declares the CUDA entries of torch's C shim"
#endif

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/headeronly/util/shim_utils.h>

#include <stdexcept>
#include <string>

namespace nbp {

inline void* current_cuda_stream(int32_t device_index) {
  void* stream = nullptr;
  if (aoti_torch_get_current_cuda_stream(device_index, &stream) != TORCH_SUCCESS)
    throw std::runtime_error("nbp: cannot get the current CUDA stream of device " + std::to_string(device_index));
  return stream;
}

}  // namespace nbp
