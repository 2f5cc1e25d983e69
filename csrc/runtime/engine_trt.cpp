// TensorRT backend (10.x and 11.x): one engine (plan file) per graph, device buffers, one CUDA stream. Inputs and
// outputs are bound with setTensorAddress; a graph runs with enqueueV3. An engine whose inputs are
// all static (the step engine) is captured into a CUDA graph on its first run and replayed after,
// which is valid because the session binds it once: its KV caches never move. Sampling runs on the
// device with nbp::sample_block_cuda when the kernels were built with CUDA, and never syncs; errors
// it flags are read once, at synchronize(). Engines built by another TensorRT major version are
// refused before deserializing (trt_version.h); their tensors' types are the graphs' (strongly typed). Compiled only where TensorRT was found (cmake option
// NBP_WITH_TENSORRT); engine_trt_stub.cpp stands in elsewhere.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iterator>
#include <map>

#include "engine.h"
#include "sampling.h"
#include "trt_version.h"

namespace nbp::rt {
namespace {

#define NBP_CUDA_TRY(call, what)                                                                        \
  do {                                                                                                  \
    const cudaError_t _e = (call);                                                                      \
    if (_e != cudaSuccess) return Err(ExitCode::kRuntime, "CUDA: ", what, ": ", cudaGetErrorString(_e)); \
  } while (0)

class Logger final : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kERROR) last_error = msg;
  }
  std::string last_error;
};

ElemType from_trt(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return ElemType::kFloat32;
    case nvinfer1::DataType::kHALF: return ElemType::kFloat16;
    case nvinfer1::DataType::kBF16: return ElemType::kBFloat16;
    case nvinfer1::DataType::kINT64: return ElemType::kInt64;
    case nvinfer1::DataType::kINT32: return ElemType::kInt32;
    default: return ElemType::kUnknown;
  }
}

void cuda_free(void* p) { cudaFree(p); }

class TrtEngine final : public Engine {
 public:
  TrtEngine(std::string path, std::unique_ptr<nvinfer1::ICudaEngine> engine, cudaStream_t stream)
      : path_(std::move(path)), engine_(std::move(engine)), stream_(stream) {}
  ~TrtEngine() override {
    if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  }

  Status init(Logger* logger) {
    context_.reset(engine_->createExecutionContext());
    if (!context_) return Err(ExitCode::kEngine, path_, ": cannot create an execution context: ", logger->last_error);
    all_static_ = true;
    for (int32_t i = 0; i < engine_->getNbIOTensors(); ++i) {
      const char* name = engine_->getIOTensorName(i);
      TensorSpec spec;
      spec.name = name;
      spec.type = from_trt(engine_->getTensorDataType(name));
      const nvinfer1::Dims d = engine_->getTensorShape(name);
      for (int32_t k = 0; k < d.nbDims; ++k) {
        spec.shape.push_back(d.d[k] < 0 ? -1 : d.d[k]);
        if (d.d[k] < 0) all_static_ = false;
      }
      (engine_->getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT ? inputs_ : outputs_).push_back(std::move(spec));
    }
    return Status::Ok();
  }

  const std::string& path() const override { return path_; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }

  Status bind(const std::string& name, void* data, const std::vector<int64_t>& shape) override {
    bool is_input = false;
    for (const TensorSpec& t : inputs_) if (t.name == name) is_input = true;
    if (is_input) {
      if (shape.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS)) {
        return Err(ExitCode::kRuntime, path_, ": input '", name, "' has ", shape.size(), " dimensions; TensorRT takes at most ",
                   nvinfer1::Dims::MAX_DIMS);
      }
      nvinfer1::Dims dims;
      dims.nbDims = static_cast<int32_t>(shape.size());
      for (size_t k = 0; k < shape.size(); ++k) dims.d[k] = shape[k];
      if (!context_->setInputShape(name.c_str(), dims)) {
        return Err(ExitCode::kRuntime, path_, ": input '", name, "' does not accept this shape (outside the optimization profile?)");
      }
    }
    if (!context_->setTensorAddress(name.c_str(), data)) return Err(ExitCode::kRuntime, path_, ": cannot bind '", name, "'");
    if (graph_exec_) {  // a new address invalidates the captured graph
      cudaGraphExecDestroy(graph_exec_);
      graph_exec_ = nullptr;
    }
    return Status::Ok();
  }

  Status run() override {
    if (graph_exec_) {
      NBP_CUDA_TRY(cudaGraphLaunch(graph_exec_, stream_), path_ + ": graph launch");
      return Status::Ok();
    }
    if (!context_->enqueueV3(stream_)) return Err(ExitCode::kRuntime, path_, ": enqueueV3 failed");
    if (all_static_ && ++runs_ == 1) {
      // The first run did TensorRT's lazy set-up; capture the second and replay it from then on.
      cudaGraph_t graph;
      NBP_CUDA_TRY(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), path_ + ": begin capture");
      const bool ok = context_->enqueueV3(stream_);
      NBP_CUDA_TRY(cudaStreamEndCapture(stream_, &graph), path_ + ": end capture");
      if (!ok) return Err(ExitCode::kRuntime, path_, ": enqueueV3 failed during CUDA graph capture");
      const cudaError_t e = cudaGraphInstantiate(&graph_exec_, graph, 0);
      cudaGraphDestroy(graph);
      if (e != cudaSuccess) return Err(ExitCode::kRuntime, path_, ": cudaGraphInstantiate: ", cudaGetErrorString(e));
      // The captured run was not executed: the first eager run already produced this step's outputs.
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  cudaStream_t stream_;
  cudaGraphExec_t graph_exec_ = nullptr;
  bool all_static_ = false;
  int64_t runs_ = 0;
  std::vector<TensorSpec> inputs_, outputs_;
};

class TrtBackend final : public Backend {
 public:
  explicit TrtBackend(const BackendOptions& opts) : opts_(opts) {}
  ~TrtBackend() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status init() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      return Err(ExitCode::kUsage, "--backend tensorrt: no CUDA device is visible");
    }
    NBP_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "stream");
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) return Err(ExitCode::kRuntime, "TensorRT: createInferRuntime failed: ", logger_.last_error);
    void* flag = nullptr;
    NBP_CUDA_TRY(cudaMalloc(&flag, sizeof(int32_t)), "error flag");
    error_flag_ = Buffer(flag, sizeof(int32_t), MemoryKind::kDevice, &cuda_free);
    NBP_CUDA_TRY(cudaMemsetAsync(flag, 0, sizeof(int32_t), stream_), "error flag");
    return Status::Ok();
  }

  const char* name() const override { return "tensorrt"; }
  MemoryKind memory() const override { return MemoryKind::kDevice; }

  Status open(const Manifest& m, const GraphSpec& spec, std::unique_ptr<Engine>* out) override {
    if (spec.engine.empty()) {
      return Err(ExitCode::kEngine, m.path, ": no TensorRT engine for '", spec.onnx,
                 "' (export on a machine with TensorRT, or use --backend onnxruntime)");
    }
    NBP_RT_TRY(check_engine_version(m, trt_version_string(getInferLibVersion())));
    NBP_RT_TRY(verify_file(m, spec.engine));
    const std::string path = m.file(spec.engine);
    std::ifstream in(path, std::ios::binary);
    const std::vector<char> blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::unique_ptr<nvinfer1::ICudaEngine> engine(runtime_->deserializeCudaEngine(blob.data(), blob.size()));
    if (!engine) {
      return Err(ExitCode::kEngine, path, ": TensorRT cannot deserialize it (built for another GPU, or a corrupt file?): ",
                 logger_.last_error);
    }
    auto e = std::make_unique<TrtEngine>(path, std::move(engine), stream_);
    NBP_RT_TRY(e->init(&logger_));
    NBP_RT_TRY(check_engine_io(*e, spec));
    *out = std::move(e);
    return Status::Ok();
  }

  Status alloc(size_t bytes, const char* what, Buffer* out) override {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) return Err(ExitCode::kRuntime, "CUDA: cannot allocate ", bytes, " bytes for ", what, ": ", cudaGetErrorString(e));
    *out = Buffer(p, bytes, MemoryKind::kDevice, &cuda_free);
    NBP_CUDA_TRY(cudaMemsetAsync(p, 0, bytes, stream_), what);
    return Status::Ok();
  }

  Status copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override {
    NBP_CUDA_TRY(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice, stream_), "copy");
    return Status::Ok();
  }
  Status upload(void* dst, const void* src, size_t bytes) override {
    // Pageable source: the call returns once the source has been read, so the caller may reuse it.
    NBP_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
    return Status::Ok();
  }
  Status download(void* dst, const void* src, size_t bytes) override {
    NBP_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    NBP_CUDA_TRY(cudaStreamSynchronize(stream_), "download");
    return Status::Ok();
  }

  Status sample(const SamplingParams& p) override {
    if (!cuda_kernels_built()) {
      return Err(ExitCode::kUsage, "--backend tensorrt needs the CUDA sampling kernel: rebuild with -DNBP_WITH_CUDA=ON");
    }
    const int64_t need = sample_block_cuda_workspace_bytes(p);
    if (need > 0 && static_cast<size_t>(need) > workspace_.bytes()) NBP_RT_TRY(alloc(static_cast<size_t>(need), "sampling workspace", &workspace_));
    const nbp::Status st = sample_block_cuda(p, workspace_.data(), error_flag_.as<int32_t>(), stream_);
    if (st != nbp::Status::kOk) return Err(ExitCode::kRuntime, "sampling (CUDA): ", status_name(st));
    return Status::Ok();
  }

  Status synchronize() override {
    int32_t flag = 0;
    NBP_CUDA_TRY(cudaMemcpyAsync(&flag, error_flag_.data(), sizeof(flag), cudaMemcpyDeviceToHost, stream_), "synchronize");
    NBP_CUDA_TRY(cudaStreamSynchronize(stream_), "synchronize");
    if (flag != 0) return Err(ExitCode::kRuntime, "sampling: the engine produced logits with NaN or +inf, or a row with every entry -inf");
    return Status::Ok();
  }

 private:
  BackendOptions opts_;
  Logger logger_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  Buffer error_flag_, workspace_;
};

}  // namespace

bool trt_backend_built() { return true; }

Status make_trt_backend(const BackendOptions& opts, std::unique_ptr<Backend>* out) {
  auto backend = std::make_unique<TrtBackend>(opts);
  NBP_RT_TRY(backend->init());
  *out = std::move(backend);
  return Status::Ok();
}

}  // namespace nbp::rt
