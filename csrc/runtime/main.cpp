// run_engine: generate videos from an export folder (python export/to_trt.py). This file only parses
// the command line; runner.cpp does the work. Every failure prints one message naming the option or
// file at fault and exits with the code listed in --help.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#if defined(__linux__)
#include <unistd.h>
#endif

#include "engine.h"
#include "runner.h"
#include "watchdog.h"

namespace {

using nbp::rt::Err;
using nbp::rt::ExitCode;
using nbp::rt::Status;
using nbp::rt::kMaxVideos;

// Fixed bounds of options whose real bound comes later (the manifest's classes and max batch, the
// free disk space): sizes beyond them are typos, and they keep every count far from overflow.
constexpr long long kMaxThreads = 1024;
constexpr long long kMaxBatch = 4096;
constexpr long long kMaxId = 1LL << 31;
constexpr long long kMaxSeed = (1LL << 62);

const char* kUsage =
    "usage: run_engine [options]\n"
    "  --engines DIR       export folder with manifest.json (default: engines)\n"
    "  --class N           class id of a class-conditional export (default: 0)\n"
    "  --context FILE      context video for frame prediction: .y4m, or raw RGB24 frames (any other name)\n"
    "  --num-videos N      videos to generate, 1..1000000 and what the output's disk can hold (default: 1)\n"
    "  --batch N           videos per run of the graphs, up to the export's max batch (default: that max)\n"
    "  --seed N            seed of the first video, 0..2^62; video i uses seed + i (default: 0)\n"
    "  --temperature X     sampling temperature >= 0, 0 = greedy (default: the manifest's)\n"
    "  --top-k N           keep the N most likely tokens, 0 = off (default: the manifest's)\n"
    "  --top-p X           nucleus mass in (0, 1], 1 = off (default: the manifest's)\n"
    "  --guidance-scale X  classifier-free guidance scale (finite), 1 = off (default: the manifest's)\n"
    "  --output PATH       Y4M file of the first video; later ones get _001, _002, ... (default: video.y4m)\n"
    "  --png               also write every frame as PATH-without-extension_FFF.png\n"
    "  --tokens-out FILE   also write the token grids, int64 little-endian (N, T', H', W')\n"
    "  --backend NAME      auto (default), onnxruntime, onnxruntime-cuda (needs onnxruntime-gpu) or tensorrt\n"
    "  --threads N         CPU threads, 0..1024, 0 = all cores (default: 0)\n"
    "  --step-timeout S    end with an error when one graph run (or loading the engines) takes longer\n"
    "                      than S seconds: a stuck backend or device, 1..86400 (default: 600)\n"
    "  --quiet             no progress lines\n"
    "Every failure prints one line 'run_engine: error: ...' naming the option or file, and exits with:\n"
    "  0 ok\n"
    "  1 the ./run_engine launcher could not build or find the program\n"
    "  2 bad option (unknown, missing value, not a number, out of range)\n"
    "  3 bad manifest.json (missing, not JSON, a missing key, a wrong type or value)\n"
    "  4 bad engine or ONNX file (missing, truncated, wrong SHA-256, other graph or shapes)\n"
    "  5 bad context video (--context)\n"
    "  6 failure while running (backend error, non-finite logits, out of memory, --step-timeout)\n"
    "  7 cannot write the output (--output, --tokens-out: folder, permissions, disk space)\n";

// An integer option in [lo, hi]; the message names the option and the range.
Status parse_int(const char* opt, const char* text, long long lo, long long hi, long long* out) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
    return Err(ExitCode::kUsage, opt, ": expected an integer >= ", lo, " and <= ", hi, ", got '", text, "'");
  }
  *out = v;
  return Status::Ok();
}

Status parse_double(const char* opt, const char* text, double* out) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !std::isfinite(v)) {
    return Err(ExitCode::kUsage, opt, ": expected a finite number, got '", text, "'");
  }
  *out = v;
  return Status::Ok();
}

Status parse(int argc, char** argv, nbp::rt::RunConfig* cfg, bool* help) {
  for (int i = 1; i < argc; ++i) {
    const std::string opt = argv[i];
    if (opt == "--help" || opt == "-h") { *help = true; return Status::Ok(); }
    if (opt == "--png") { cfg->png = true; continue; }
    if (opt == "--quiet") { cfg->quiet = true; continue; }
    if (i + 1 >= argc) return Err(ExitCode::kUsage, opt, ": unknown option or missing value (see --help)");
    const char* val = argv[++i];
    if (*val == '\0') return Err(ExitCode::kUsage, opt, ": expected a value, got an empty string");
    long long n = 0;
    if (opt == "--engines") cfg->engines = val;
    else if (opt == "--output") cfg->output = val;
    else if (opt == "--context") cfg->context = val;
    else if (opt == "--tokens-out") cfg->tokens_out = val;
    else if (opt == "--class") { NBP_RT_TRY(parse_int("--class", val, 0, kMaxId, &n)); cfg->class_id = n; }
    else if (opt == "--num-videos") { NBP_RT_TRY(parse_int("--num-videos", val, 1, kMaxVideos, &n)); cfg->num_videos = n; }
    else if (opt == "--batch") { NBP_RT_TRY(parse_int("--batch", val, 1, kMaxBatch, &n)); cfg->batch = n; }
    else if (opt == "--seed") { NBP_RT_TRY(parse_int("--seed", val, 0, kMaxSeed, &n)); cfg->seed = static_cast<uint64_t>(n); }
    else if (opt == "--threads") { NBP_RT_TRY(parse_int("--threads", val, 0, kMaxThreads, &n)); cfg->threads = static_cast<int>(n); }
    else if (opt == "--top-k") { NBP_RT_TRY(parse_int("--top-k", val, 0, kMaxId, &n)); cfg->sampling.top_k = n; cfg->has_top_k = true; }
    else if (opt == "--temperature") { NBP_RT_TRY(parse_double("--temperature", val, &cfg->sampling.temperature)); cfg->has_temperature = true; }
    else if (opt == "--step-timeout") {
      NBP_RT_TRY(parse_double("--step-timeout", val, &cfg->step_timeout));
      if (cfg->step_timeout < 1 || cfg->step_timeout > 86400) {
        return Err(ExitCode::kUsage, "--step-timeout: expected seconds >= 1 and <= 86400, got '", val, "'");
      }
    }
    else if (opt == "--top-p") { NBP_RT_TRY(parse_double("--top-p", val, &cfg->sampling.top_p)); cfg->has_top_p = true; }
    else if (opt == "--guidance-scale") { NBP_RT_TRY(parse_double("--guidance-scale", val, &cfg->sampling.guidance_scale)); cfg->has_guidance_scale = true; }
    else if (opt == "--backend") {
      const std::string b = val;
      if (b == "auto") cfg->backend = nbp::rt::BackendKind::kAuto;
      else if (b == "onnxruntime" || b == "ort") cfg->backend = nbp::rt::BackendKind::kOnnxRuntime;
      else if (b == "onnxruntime-cuda" || b == "ort-cuda") cfg->backend = nbp::rt::BackendKind::kOnnxRuntimeCuda;
      else if (b == "tensorrt" || b == "trt") cfg->backend = nbp::rt::BackendKind::kTensorRT;
      else return Err(ExitCode::kUsage, "--backend: expected auto, onnxruntime, onnxruntime-cuda or tensorrt, got '", b, "'");
    } else {
      return Err(ExitCode::kUsage, opt, ": unknown option (see --help)");
    }
  }
  return Status::Ok();
}

// The sampler's OpenMP threads must sleep between blocks, not spin, or they hold the cores that
// ONNX Runtime's threads need for the next step (docs/results/runtime.md has the measurement).
// OpenMP reads its wait policy when its library loads, so when the user has not chosen one the
// program runs itself again with OMP_WAIT_POLICY=PASSIVE; if that fails it goes on as it is.
void prefer_passive_openmp(char** argv) {
#if defined(__linux__)
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
#else
  (void)argv;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp(argv);
  try {
    nbp::rt::RunConfig cfg;
    bool help = false;
    Status st = parse(argc, argv, &cfg, &help);
    if (st.ok() && help) {
      std::fputs(kUsage, stdout);
      std::printf("TensorRT backend: %s\n", nbp::rt::trt_backend_built() ? "built" : "not built");
      return 0;
    }
    if (st.ok()) {
      nbp::rt::watchdog_start(cfg.step_timeout);
      st = nbp::rt::run(cfg);
      nbp::rt::watchdog_stop();
    }
    if (!st.ok()) {
      std::fprintf(stderr, "run_engine: error: %s\n", st.message().c_str());
      return static_cast<int>(st.code());
    }
    return 0;
  } catch (const std::bad_alloc&) {  // a buffer larger than the machine holds
    std::fprintf(stderr, "run_engine: error: out of memory: lower --batch or use a smaller export\n");
    return static_cast<int>(ExitCode::kRuntime);
  } catch (const std::exception& e) {  // a failure no check foresaw
    std::fprintf(stderr, "run_engine: error: %s\n", e.what());
    return static_cast<int>(ExitCode::kRuntime);
  }
}
