// One inference graph (an ONNX Runtime session or a TensorRT engine) behind a small interface:
// its declared inputs and outputs, binding caller-owned memory by name, and run(). The session binds
// the step graph once, so its KV caches stay at fixed addresses for the whole block loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "buffer.h"
#include "manifest.h"
#include "status.h"

namespace nbp { struct SamplingParams; }

namespace nbp::rt {

class Engine {
 public:
  virtual ~Engine() = default;
  virtual const std::string& path() const = 0;
  // As the file declares them; -1 marks a dynamic dimension.
  virtual const std::vector<TensorSpec>& inputs() const = 0;
  virtual const std::vector<TensorSpec>& outputs() const = 0;
  // Binds memory the caller owns (host or device, as the backend says) to tensor `name` with a
  // concrete shape. A binding holds until the same name is bound again.
  virtual Status bind(const std::string& name, void* data, const std::vector<int64_t>& shape) = 0;
  virtual Status run() = 0;
};

// Checks that an engine's inputs and outputs are exactly those the manifest lists for the graph
// (names, element types, static sizes); errors name the engine file (ExitCode::kEngine).
Status check_engine_io(const Engine& engine, const GraphSpec& spec);

// What the session needs from a backend besides engines: memory where the engines read and write,
// copies, the sampling kernel on that memory, and a point where all queued work has finished.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual MemoryKind memory() const = 0;
  // Opens the graph `spec` of manifest `m` (checking its SHA-256 and its inputs and outputs).
  virtual Status open(const Manifest& m, const GraphSpec& spec, std::unique_ptr<Engine>* out) = 0;
  virtual Status alloc(size_t bytes, const char* what, Buffer* out) = 0;
  // rows x width bytes from src (rows src_pitch apart) to dst (rows dst_pitch apart); same memory kind.
  virtual Status copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) = 0;
  virtual Status upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual Status download(void* host_dst, const void* src, size_t bytes) = 0;
  // nbp::sample_block_cpu or nbp::sample_block_cuda on this backend's memory.
  virtual Status sample(const SamplingParams& p) = 0;
  // Waits for queued work and reports errors deferred until now (e.g. non-finite logits on CUDA).
  virtual Status synchronize() = 0;
};

struct BackendOptions {
  int threads = 0;    // CPU threads for graphs and sampling; 0: all cores
  bool cuda = false;  // ONNX Runtime: run the graphs with its CUDA execution provider (device 0)
};

// ONNX Runtime on the CPU, or with its CUDA execution provider (``cuda``): the graphs then run on
// the GPU while the buffers stay in host memory (ONNX Runtime copies them around each run), and the
// sampler stays on the CPU. A library without that provider is a clear runtime error.
Status make_ort_backend(const BackendOptions& opts, std::unique_ptr<Backend>* out);

// TensorRT on the first CUDA device; ExitCode::kUsage with a "rebuild with" message where this
// build lacks TensorRT.
Status make_trt_backend(const BackendOptions& opts, std::unique_ptr<Backend>* out);
bool trt_backend_built();

}  // namespace nbp::rt
