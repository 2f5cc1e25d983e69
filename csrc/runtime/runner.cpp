#include "runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#if defined(__unix__)
#include <sys/statvfs.h>
#endif

#include "block_layout.h"
#include "engine.h"
#include "manifest.h"
#include "session.h"
#include "video_io.h"
#include "watchdog.h"

namespace nbp::rt {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// video.y4m -> video.y4m, video_001.y4m, ...
std::string output_path(const std::string& base, int64_t index) {
  if (index == 0) return base;
  char num[16];
  std::snprintf(num, sizeof(num), "_%03lld", static_cast<long long>(index));
  const size_t dot = base.find_last_of('.');
  const size_t slash = base.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return base + num;
  return base.substr(0, dot) + num + base.substr(dot);
}

Status check_options(const RunConfig& cfg, const Manifest& m, const SamplingConfig& sc) {
  const ModelSpec& s = m.model;
  if (s.prefix_kind == PrefixKind::kClass) {
    if (cfg.class_id < 0 || cfg.class_id >= s.num_classes) {
      return Err(ExitCode::kUsage, "--class: expected a class id in [0, ", s.num_classes, "), got ", cfg.class_id);
    }
    if (!cfg.context.empty()) return Err(ExitCode::kUsage, "--context: this export is class-conditional (prefix kind 'class')");
  } else if (s.prefix_kind == PrefixKind::kNone) {
    if (!cfg.context.empty()) return Err(ExitCode::kUsage, "--context: this export is unconditional (prefix kind 'none')");
  } else if (cfg.context.empty()) {
    return Err(ExitCode::kUsage, "--context: this export predicts frames from ", s.context_frames,
               " latent context frames; give a Y4M or raw .rgb video");
  }
  if (sc.guidance_scale != 1.0 && !s.unconditional_stream) {
    return Err(ExitCode::kUsage, "--guidance-scale: this export has no unconditional stream (exported with --no-unconditional-stream); use 1");
  }
  if (!(sc.temperature >= 0.0)) return Err(ExitCode::kUsage, "--temperature: expected a number >= 0, got ", sc.temperature);
  if (sc.top_k < 0) return Err(ExitCode::kUsage, "--top-k: expected an integer >= 0, got ", sc.top_k);
  if (!(sc.top_p > 0.0 && sc.top_p <= 1.0)) return Err(ExitCode::kUsage, "--top-p: expected a number in (0, 1], got ", sc.top_p);
  if (cfg.batch < 0 || cfg.batch > s.max_batch) {
    return Err(ExitCode::kUsage, "--batch: expected 1..", s.max_batch, " (the export's max batch), got ", cfg.batch);
  }
  return Status::Ok();
}

// Bytes the run writes: a Y4M file per video (4:2:0, a FRAME line per frame), PNGs counted at their
// uncompressed size (an upper bound), and the token grids.
double output_bytes(const RunConfig& cfg, const Manifest& m) {
  const double pixels = static_cast<double>(m.video.height) * static_cast<double>(m.video.width);
  double per_video = 128.0 + static_cast<double>(m.video.frames) * (6.0 + 1.5 * pixels);
  if (cfg.png) per_video += static_cast<double>(m.video.frames) * (3.0 * pixels + 1024.0);
  const ModelSpec& s = m.model;
  if (!cfg.tokens_out.empty()) per_video += 8.0 * static_cast<double>(s.grid[0] * s.grid[1] * s.grid[2]);
  return per_video * static_cast<double>(cfg.num_videos);
}

// --num-videos is bounded by what the output's disk can hold: refused before the first file rather
// than failing half way. Where the free space cannot be read (no folder yet), writing says why.
Status check_disk_space(const RunConfig& cfg, const Manifest& m) {
#if defined(__unix__)
  const size_t slash = cfg.output.find_last_of('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : cfg.output.substr(0, slash);
  struct statvfs fs;
  if (statvfs(folder.c_str(), &fs) != 0) return Status::Ok();
  const double free_bytes = static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
  const double need = output_bytes(cfg, m);
  if (need > free_bytes) {
    const double mib = 1024.0 * 1024.0;
    return Err(ExitCode::kOutput, "--num-videos ", cfg.num_videos, ": the videos need about ",
               static_cast<long long>(need / mib), " MiB, but ", folder, " has ", static_cast<long long>(free_bytes / mib),
               " MiB free: lower --num-videos or choose another --output");
  }
#else
  (void)cfg;
  (void)m;
#endif
  return Status::Ok();
}

// The prefix of every video from the context video: its first frames through the encoder graph.
Status context_prefix(const RunConfig& cfg, Session* session, std::vector<int64_t>* prefix) {
  const Manifest& m = session->manifest();
  const ModelSpec& s = m.model;
  Frames frames;
  if (ends_with(cfg.context, ".y4m")) NBP_RT_TRY(read_y4m(cfg.context, &frames));
  else NBP_RT_TRY(read_raw_rgb(cfg.context, m.video.height, m.video.width, &frames));
  const int64_t need = m.encoder.inputs.at(0).shape.at(2);
  if (frames.height != m.video.height || frames.width != m.video.width) {
    return Err(ExitCode::kInput, cfg.context, ": frames are ", frames.width, "x", frames.height, ", the model needs ",
               m.video.width, "x", m.video.height);
  }
  if (frames.count < need) {
    return Err(ExitCode::kInput, cfg.context, ": has ", frames.count, " frames, the model needs at least ", need, " as context");
  }
  std::vector<float> video(static_cast<size_t>(3 * need * frames.height * frames.width));
  frames_to_video(frames, 0, need, video.data());
  std::vector<int64_t> codes(static_cast<size_t>(s.context_frames * s.grid[1] * s.grid[2]));
  NBP_RT_TRY(session->encode(video.data(), codes.data()));
  const BlockLayout ctx{{s.context_frames, s.grid[1], s.grid[2]}, {s.block_shape[0], s.block_shape[1], s.block_shape[2]}};
  prefix->resize(codes.size());
  ctx.to_sequence(codes.data(), prefix->data());
  if (static_cast<int64_t>(prefix->size()) != s.prefix_len) {
    return Err(ExitCode::kManifest, m.path, ": model.prefix.length ", s.prefix_len, " does not match ", prefix->size(),
               " context tokens");
  }
  return Status::Ok();
}

}  // namespace

Status run(const RunConfig& cfg) {
  Manifest m;
  NBP_RT_TRY(load_manifest(cfg.engines, &m));
  const ModelSpec& s = m.model;
  SamplingConfig sc = cfg.sampling;
  if (!cfg.has_temperature) sc.temperature = m.sampling.temperature;
  if (!cfg.has_top_k) sc.top_k = m.sampling.top_k;
  if (!cfg.has_top_p) sc.top_p = m.sampling.top_p;
  if (!cfg.has_guidance_scale) sc.guidance_scale = s.unconditional_stream ? m.sampling.guidance_scale : 1.0;
  NBP_RT_TRY(check_options(cfg, m, sc));
  NBP_RT_TRY(check_disk_space(cfg, m));

  BackendKind kind = cfg.backend;
  if (kind == BackendKind::kAuto) {
    kind = trt_backend_built() && !m.step.engine.empty() ? BackendKind::kTensorRT : BackendKind::kOnnxRuntime;
  }
  BackendOptions bo;
  bo.threads = cfg.threads;
  bo.cuda = kind == BackendKind::kOnnxRuntimeCuda;
  watchdog_enter("loading the engines");
  std::unique_ptr<Backend> backend;
  if (kind == BackendKind::kTensorRT) NBP_RT_TRY(make_trt_backend(bo, &backend));
  else NBP_RT_TRY(make_ort_backend(bo, &backend));
  std::unique_ptr<Session> session;
  NBP_RT_TRY(Session::create(m, backend.get(), &session));

  // Prefix of one video; every video of a run shares it.
  std::vector<int64_t> cond, uncond;
  if (s.prefix_kind == PrefixKind::kClass) {
    cond.assign(static_cast<size_t>(s.prefix_len), cfg.class_id);
    uncond.assign(static_cast<size_t>(s.prefix_len), s.null_class);
  } else if (s.prefix_kind == PrefixKind::kFrames) {
    NBP_RT_TRY(context_prefix(cfg, session.get(), &cond));
    uncond = cond;
  }

  const int64_t batch = cfg.batch > 0 ? cfg.batch : s.max_batch;
  const int64_t seq_len = s.num_blocks * s.block_len, P = s.prefix_len;
  const BlockLayout layout{{s.grid[0], s.grid[1], s.grid[2]}, {s.block_shape[0], s.block_shape[1], s.block_shape[2]}};
  std::ofstream tokens_file;
  if (!cfg.tokens_out.empty()) {
    tokens_file.open(cfg.tokens_out, std::ios::binary);
    if (!tokens_file) return Err(ExitCode::kOutput, cfg.tokens_out, ": cannot open for writing (--tokens-out)");
  }
  if (!cfg.quiet) {
    std::printf("run_engine: %s backend, %lld video(s) of %lldx%lldx%lld, %lld blocks of %lld tokens, guidance scale %.3g\n",
                backend->name(), static_cast<long long>(cfg.num_videos), static_cast<long long>(m.video.frames),
                static_cast<long long>(m.video.height), static_cast<long long>(m.video.width),
                static_cast<long long>(s.num_blocks), static_cast<long long>(s.block_len), sc.guidance_scale);
  }

  std::vector<int64_t> seq(static_cast<size_t>(batch * seq_len)), full(static_cast<size_t>(layout.size()));
  std::vector<int64_t> grid(static_cast<size_t>(layout.size())), seeds(static_cast<size_t>(batch));
  std::vector<int64_t> cond_rows(static_cast<size_t>(batch * P)), uncond_rows(static_cast<size_t>(batch * P));
  for (int64_t b = 0; b < batch; ++b) {
    std::copy(cond.begin(), cond.end(), cond_rows.begin() + b * P);
    std::copy(uncond.begin(), uncond.end(), uncond_rows.begin() + b * P);
  }
  std::vector<float> video(static_cast<size_t>(3 * m.video.frames * m.video.height * m.video.width));
  for (int64_t first = 0; first < cfg.num_videos; first += batch) {
    const int64_t count = std::min(batch, cfg.num_videos - first);
    for (int64_t b = 0; b < count; ++b) seeds[b] = static_cast<int64_t>(cfg.seed + static_cast<uint64_t>(first + b));
    GenerateTiming timing;
    NBP_RT_TRY(session->generate(cond_rows.data(), uncond_rows.data(), seeds.data(), count, sc, seq.data(), &timing));
    for (int64_t b = 0; b < count; ++b) {
      const auto t0 = std::chrono::steady_clock::now();
      // The clip's sequence: context tokens (frames prefix) then the generated blocks.
      int64_t at = 0;
      if (s.prefix_kind == PrefixKind::kFrames) for (int64_t v : cond) full[at++] = v;
      for (int64_t j = 0; j < seq_len; ++j) full[at++] = seq[b * seq_len + j];
      layout.to_grid(full.data(), grid.data());
      if (tokens_file) tokens_file.write(reinterpret_cast<const char*>(grid.data()), static_cast<std::streamsize>(grid.size() * 8));
      NBP_RT_TRY(session->decode(grid.data(), video.data()));
      watchdog_enter("writing the video");
      Frames frames;
      video_to_frames(video.data(), m.video.frames, m.video.height, m.video.width, &frames);
      frames.fps_num = m.video.fps;
      const std::string path = output_path(cfg.output, first + b);
      NBP_RT_TRY(write_y4m(path, frames));
      if (cfg.png) {
        const size_t dot = path.find_last_of('.');
        NBP_RT_TRY(write_pngs(dot == std::string::npos ? path : path.substr(0, dot), frames));
      }
      const double decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      // A batch's blocks are shared by its videos: each video is charged its share.
      const double video_ms = timing.generate_ms / count + decode_ms;
      if (!cfg.quiet) {
        std::printf("video %lld/%lld seed %lld: %.2f ms/block (%lld blocks, batch %lld), decode %.1f ms, %.2f frames/s -> %s\n",
                    static_cast<long long>(first + b + 1), static_cast<long long>(cfg.num_videos),
                    static_cast<long long>(seeds[b]), timing.generate_ms / timing.blocks,
                    static_cast<long long>(timing.blocks), static_cast<long long>(count), decode_ms,
                    m.video.frames * 1000.0 / video_ms, path.c_str());
        std::fflush(stdout);
      }
    }
  }
  if (tokens_file && !tokens_file.flush()) return Err(ExitCode::kOutput, cfg.tokens_out, ": write failed");
  return Status::Ok();
}

}  // namespace nbp::rt
