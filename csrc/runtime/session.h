// The block loop. A Session owns the graphs of one export folder and every buffer they read or
// write, allocated once: prefill writes the first KV entries and the logits of the first block; then
// each step feeds the block just sampled, appends its keys and values to the caches (which never
// move, so the step graph is bound once) and returns the logits of the next block. Every position
// of a block is drawn in parallel by the same kernel as nbp_ext.ops.sample_block, keyed by (video
// seed, block index, position), so a video's tokens depend only on its seed.
#pragma once

#include <memory>
#include <vector>

#include "config.h"
#include "engine.h"
#include "manifest.h"

namespace nbp::rt {

struct GenerateTiming {
  double generate_ms = 0;  // prefill and every step, sampling included
  int64_t blocks = 0;      // forward passes (prefill counts as one)
};

class Session {
 public:
  // Opens prefill, step and decoder (and encoder for a frames prefix) and allocates the buffers.
  static Status create(const Manifest& m, Backend* backend, std::unique_ptr<Session>* out);

  const Manifest& manifest() const { return m_; }

  // Generates `count` (1..max_batch) videos. cond_prefix and uncond_prefix are (count, P) host
  // int64 (uncond_prefix is read only with guidance); seeds (count,); tokens_out (count,
  // num_blocks * L) host receives the video blocks in block-major order.
  Status generate(const int64_t* cond_prefix, const int64_t* uncond_prefix, const int64_t* seeds, int64_t count,
                  const SamplingConfig& cfg, int64_t* tokens_out, GenerateTiming* timing);

  // One clip: codes (T', H', W') -> video (3, T, H, W) in [-1, 1].
  Status decode(const int64_t* codes, float* video);
  // One clip of context frames: video (3, Tc, H, W) in [-1, 1] -> codes (Tc', H', W').
  Status encode(const float* video, int64_t* codes);

 private:
  explicit Session(const Manifest& m, Backend* backend) : m_(m), backend_(backend) {}
  Status init();
  Status alloc(int64_t elems, ElemType t, const char* what, Buffer* out);
  Status sample(int64_t count, uint64_t offset, const SamplingConfig& cfg, bool guided);
  Status store_block(int64_t count, int64_t block);

  Manifest m_;
  Backend* backend_;
  std::unique_ptr<Engine> prefill_, step_, decoder_, encoder_;

  Buffer prefix_, logits_, tokens_in_, position_, seeds_, sampled_, sequence_;
  std::vector<Buffer> prefill_k_, prefill_v_, cache_k_, cache_v_, new_k_, new_v_;
  Buffer codes_, video_, enc_video_, enc_codes_;
};

}  // namespace nbp::rt
