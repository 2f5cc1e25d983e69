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
  // int64 (uncond_prefix is read only with the unconditional stream); seeds (count,); tokens_out (count,
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
  // Draws `len` positions per video (a block, or one token of a hybrid start) from `logits` (graph_batch, len, V).
  Status sample(int64_t count, uint64_t offset, const SamplingConfig& cfg, bool guided, const Buffer& logits, int64_t len);
  Status store_block(int64_t count, int64_t block);
  Status feed_streams(Buffer& in, const void* src, size_t src_pitch, size_t row, int64_t count);
  // Hybrid start: block 0 token by token, ending with block 0 fed to the first block step.
  Status hybrid_first_block(int64_t count, const SamplingConfig& cfg, bool guided);
  // Writes `width` positions of new keys and values at `position` of every layer's caches.
  Status append_kv(const std::vector<Buffer>& keys, const std::vector<Buffer>& values, int64_t position, int64_t width);

  Manifest m_;
  Backend* backend_;
  std::unique_ptr<Engine> prefill_, step_, decoder_, encoder_, token_step_;

  Buffer prefix_, logits_, tokens_in_, position_, seeds_, sampled_, sequence_;
  Buffer token_logits_, token_in_;  // hybrid start: one token's logits and input
  std::vector<Buffer> prefill_k_, prefill_v_, cache_k_, cache_v_, new_k_, new_v_, token_k_, token_v_;
  Buffer codes_, video_, enc_video_, enc_codes_;
  ElemType kv_type_ = ElemType::kFloat32;  // element type of every key and value buffer
};

}  // namespace nbp::rt
