// The Python module nbp_ext._C: loading it registers the nbp ops (on PyTorch's stable ABI, so one
// build serves every torch from the target version on); build_info() says what was built.
#include <pybind11/pybind11.h>
#include <torch/csrc/stable/version.h>

#include "../kernels/sampling.h"

#ifndef NBP_TORCH_VERSION
#define NBP_TORCH_VERSION "unknown"
#endif
#ifndef NBP_CUDA_ARCHS
#define NBP_CUDA_ARCHS ""
#endif
#ifndef NBP_CPU_FLAGS
#define NBP_CPU_FLAGS ""
#endif
#ifndef TORCH_TARGET_VERSION
#error "build with -DTORCH_TARGET_VERSION=...: the oldest torch this module must load under"
#endif

// Bumped whenever an op schema, kernel contract or the binding ABI changes, so a stale build is
// detected (2: the bindings moved to the stable ABI).
#define NBP_OPS_VERSION 2

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "nbp compiled kernels (ops are registered under torch.ops.nbp)";
  m.attr("OPS_VERSION") = NBP_OPS_VERSION;
  m.def("build_info", []() {
    py::dict d;
    d["cuda"] = nbp::cuda_kernels_built();
    d["cuda_archs"] = std::string(NBP_CUDA_ARCHS);
#ifdef _OPENMP
    d["openmp"] = true;
    d["openmp_version"] = static_cast<int>(_OPENMP);
#else
    d["openmp"] = false;
    d["openmp_version"] = 0;
#endif
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = std::string("unknown");
#endif
    d["cpu_flags"] = std::string(NBP_CPU_FLAGS);
    d["torch_version"] = std::string(NBP_TORCH_VERSION);
    d["stable_abi"] = true;
    const unsigned long long target = TORCH_TARGET_VERSION;
    d["torch_target"] = std::to_string(target >> 56) + "." + std::to_string((target >> 48) & 0xff);
    d["ops_version"] = NBP_OPS_VERSION;
    return d;
  }, "What this build of the kernels contains: CUDA (and for which architectures), OpenMP, compiler, "
     "CPU flags, the torch its headers came from (torch_version) and the oldest torch it loads under "
     "(torch_target, the stable-ABI target).");
}
