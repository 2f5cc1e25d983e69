// ONNX Runtime backend (CPU): each graph is an Ort::Session; inputs and outputs are bound with an
// Ort::IoBinding to host buffers the session owns, so a step reads and writes at fixed addresses.
// The C++ API throws Ort::Exception: every call is caught here and becomes a Status.
#include <onnxruntime_cxx_api.h>

#include <cstring>
#include <map>

#include "engine.h"
#include "sampling.h"

namespace nbp::rt {
namespace {

ElemType from_onnx(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return ElemType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return ElemType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return ElemType::kBFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return ElemType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return ElemType::kInt32;
    default: return ElemType::kUnknown;
  }
}

ONNXTensorElementDataType to_onnx(ElemType t) {
  switch (t) {
    case ElemType::kFloat32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case ElemType::kFloat16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case ElemType::kBFloat16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16;
    case ElemType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case ElemType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case ElemType::kUnknown: break;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

class OrtEngine final : public Engine {
 public:
  OrtEngine(std::string path, Ort::Session session)
      : path_(std::move(path)), session_(std::move(session)), binding_(session_),
        cpu_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {}

  Status describe() {
    try {
      Ort::AllocatorWithDefaultOptions alloc;
      auto read = [&](bool input, size_t i) {
        TensorSpec spec;
        spec.name = input ? session_.GetInputNameAllocated(i, alloc).get() : session_.GetOutputNameAllocated(i, alloc).get();
        Ort::TypeInfo info = input ? session_.GetInputTypeInfo(i) : session_.GetOutputTypeInfo(i);
        if (info.GetONNXType() != ONNX_TYPE_TENSOR) return spec;  // type stays kUnknown: the check reports it
        auto tensor = info.GetTensorTypeAndShapeInfo();
        spec.type = from_onnx(tensor.GetElementType());
        spec.shape = tensor.GetShape();
        for (int64_t& d : spec.shape) if (d < 0) d = -1;
        return spec;
      };
      for (size_t i = 0; i < session_.GetInputCount(); ++i) inputs_.push_back(read(true, i));
      for (size_t i = 0; i < session_.GetOutputCount(); ++i) outputs_.push_back(read(false, i));
    } catch (const Ort::Exception& e) {
      return Err(ExitCode::kEngine, path_, ": cannot read inputs and outputs: ", e.what());
    }
    return Status::Ok();
  }

  const std::string& path() const override { return path_; }
  const std::vector<TensorSpec>& inputs() const override { return inputs_; }
  const std::vector<TensorSpec>& outputs() const override { return outputs_; }

  Status bind(const std::string& name, void* data, const std::vector<int64_t>& shape) override {
    const TensorSpec* spec = nullptr;
    bool is_input = false;
    for (const TensorSpec& t : inputs_) if (t.name == name) { spec = &t; is_input = true; }
    for (const TensorSpec& t : outputs_) if (t.name == name) spec = &t;
    if (!spec) return Err(ExitCode::kEngine, path_, ": no input or output named '", name, "'");
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    try {
      Ort::Value value = Ort::Value::CreateTensor(cpu_, data, static_cast<size_t>(count) * elem_size(spec->type),
                                                  shape.data(), shape.size(), to_onnx(spec->type));
      if (is_input) binding_.BindInput(name.c_str(), value);
      else binding_.BindOutput(name.c_str(), value);
      values_[name] = std::move(value);
    } catch (const Ort::Exception& e) {
      return Err(ExitCode::kRuntime, path_, ": cannot bind '", name, "': ", e.what());
    }
    return Status::Ok();
  }

  Status run() override {
    try {
      session_.Run(Ort::RunOptions{nullptr}, binding_);
    } catch (const Ort::Exception& e) {
      return Err(ExitCode::kRuntime, path_, ": run failed: ", e.what());
    }
    return Status::Ok();
  }

 private:
  std::string path_;
  Ort::Session session_;
  Ort::IoBinding binding_;
  Ort::MemoryInfo cpu_;
  std::vector<TensorSpec> inputs_, outputs_;
  std::map<std::string, Ort::Value> values_;  // keeps bound tensors alive
};

class OrtBackend final : public Backend {
 public:
  explicit OrtBackend(const BackendOptions& opts) : opts_(opts) {}

  // The CUDA execution provider on device 0; the CPU-only library has none and says so here.
  static Status append_cuda(Ort::SessionOptions* so) {
    try {
      OrtCUDAProviderOptions cuda{};
      cuda.device_id = 0;
      so->AppendExecutionProvider_CUDA(cuda);
    } catch (const Ort::Exception& e) {
      return Err(ExitCode::kRuntime, "--backend onnxruntime-cuda: this ONNX Runtime library has no usable CUDA "
                 "execution provider (", e.what(), "); install onnxruntime-gpu and run scripts/fetch_onnxruntime.sh again");
    }
    return Status::Ok();
  }

  Status init() {
    try {
      // Fatal only: every failure comes back as an exception that becomes one message naming the file.
      env_ = std::make_unique<Ort::Env>(ORT_LOGGING_LEVEL_FATAL, "run_engine");
    } catch (const Ort::Exception& e) {
      return Err(ExitCode::kRuntime, "ONNX Runtime: cannot create the environment: ", e.what());
    }
    return Status::Ok();
  }

  const char* name() const override { return opts_.cuda ? "onnxruntime-cuda" : "onnxruntime-cpu"; }
  MemoryKind memory() const override { return MemoryKind::kHost; }

  Status open(const Manifest& m, const GraphSpec& spec, std::unique_ptr<Engine>* out) override {
    NBP_RT_TRY(verify_file(m, spec.onnx));
    const std::string path = m.file(spec.onnx);
    std::unique_ptr<OrtEngine> engine;
    try {
      Ort::SessionOptions so;
      so.SetIntraOpNumThreads(opts_.threads);
      so.SetInterOpNumThreads(1);
      // Idle threads sleep instead of spinning: between two steps the cores go to the sampler.
      so.AddConfigEntry("session.intra_op.allow_spinning", "0");
      so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
      if (opts_.cuda) NBP_RT_TRY(append_cuda(&so));
      engine = std::make_unique<OrtEngine>(path, Ort::Session(*env_, path.c_str(), so));
    } catch (const Ort::Exception& e) {
      // The CPU provider has no bf16 arithmetic kernels, so a bf16 export fails here; say what runs it.
      const char* hint = m.precision == "bf16" && !opts_.cuda
                             ? " (ONNX Runtime's CPU provider has no bfloat16 kernels: run a bf16 export with --backend "
                               "tensorrt, or export with --precision fp16 or fp32)"
                             : "";
      return Err(ExitCode::kEngine, path, ": ONNX Runtime cannot load it: ", e.what(), hint);
    }
    NBP_RT_TRY(engine->describe());
    NBP_RT_TRY(check_engine_io(*engine, spec));
    *out = std::move(engine);
    return Status::Ok();
  }

  Status alloc(size_t bytes, const char* what, Buffer* out) override { return alloc_host(bytes, what, out); }

  Status copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t rows) override {
    auto* d = static_cast<uint8_t*>(dst);
    auto* s = static_cast<const uint8_t*>(src);
    for (size_t r = 0; r < rows; ++r) std::memcpy(d + r * dst_pitch, s + r * src_pitch, width);
    return Status::Ok();
  }
  Status upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); return Status::Ok(); }
  Status download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); return Status::Ok(); }

  Status sample(const SamplingParams& p) override {
    const nbp::Status st = sample_block_cpu(p, opts_.threads);
    if (st == nbp::Status::kNonFiniteLogits) {
      return Err(ExitCode::kRuntime, "sampling: the graph produced logits with NaN or +inf, or a row with every entry -inf");
    }
    if (st != nbp::Status::kOk) return Err(ExitCode::kRuntime, "sampling: ", status_name(st));
    return Status::Ok();
  }

  Status synchronize() override { return Status::Ok(); }

 private:
  BackendOptions opts_;
  std::unique_ptr<Ort::Env> env_;
};

}  // namespace

Status make_ort_backend(const BackendOptions& opts, std::unique_ptr<Backend>* out) {
  auto backend = std::make_unique<OrtBackend>(opts);
  NBP_RT_TRY(backend->init());
  *out = std::move(backend);
  return Status::Ok();
}

}  // namespace nbp::rt
