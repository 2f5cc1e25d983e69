// Small plain structs that carry run_engine's options from main to the session.
#pragma once

#include <cstdint>
#include <string>

namespace nbp::rt {

// Most videos one run makes: a bound on typos and on output names (video_1000000.y4m); the free
// space of the output's disk bounds it further (runner.cpp).
constexpr long long kMaxVideos = 1000000;

enum class BackendKind { kAuto, kOnnxRuntime, kOnnxRuntimeCuda, kTensorRT };

struct SamplingConfig {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: off
  double top_p = 1.0;        // 1: off
  double guidance_scale = 1.0;  // classifier-free guidance scale; 1: off
};

struct RunConfig {
  std::string engines = "engines";   // folder with manifest.json
  std::string output = "video.y4m";  // first video; more get _001, _002, ... before the extension
  std::string context;               // frames prefix: Y4M or raw RGB24 (.rgb) context video
  std::string tokens_out;            // optional: generated grids, int64 (N, T', H', W') little-endian
  BackendKind backend = BackendKind::kAuto;
  int64_t class_id = 0;
  int64_t num_videos = 1;
  int64_t batch = 0;                 // videos per run of the graphs; 0: the manifest's max_batch
  uint64_t seed = 0;
  int threads = 0;
  double step_timeout = 600;         // seconds one graph run (or the engine loading) may take (watchdog.h)
  bool png = false;
  bool quiet = false;
  bool has_temperature = false, has_top_k = false, has_top_p = false, has_guidance_scale = false;
  SamplingConfig sampling;           // fields without has_* come from the manifest
};

}  // namespace nbp::rt
