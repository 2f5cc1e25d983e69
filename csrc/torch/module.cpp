// The Python module nbp_ext._C: loading it registers the nbp ops; build_info() says what was built.
#include <pybind11/pybind11.h>

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

// Bumped whenever an op schema or kernel contract changes, so a stale build is detected.
#define NBP_OPS_VERSION 1

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
    d["ops_version"] = NBP_OPS_VERSION;
    return d;
  }, "What this build of the kernels contains: CUDA (and for which architectures), OpenMP, compiler, "
     "CPU flags and the torch version it was compiled against.");
}
