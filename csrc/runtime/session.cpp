#include "session.h"

#include <chrono>
#include <string>

#include "sampling.h"
#include "watchdog.h"

namespace nbp::rt {
namespace {

std::string layer_name(const char* base, int64_t i) { return std::string(base) + "_" + std::to_string(i); }

// Binds `name` after checking that the manifest lists it with this shape (dynamic sizes match any)
// and element type.
Status bind_checked(const Manifest& m, const char* graph, const GraphSpec& spec, Engine* engine, const std::string& name,
                    void* data, const std::vector<int64_t>& shape, ElemType type) {
  const TensorSpec* t = nullptr;
  for (const auto* list : {&spec.inputs, &spec.outputs}) {
    for (const TensorSpec& x : *list) if (x.name == name) t = &x;
  }
  if (!t) return Err(ExitCode::kManifest, m.path, ": graphs.", graph, " lists no tensor '", name, "'");
  bool same = t->shape.size() == shape.size();
  for (size_t i = 0; same && i < shape.size(); ++i) same = t->shape[i] < 0 || t->shape[i] == shape[i];
  if (!same) {
    std::string want;
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    return Err(ExitCode::kManifest, m.path, ": graphs.", graph, " tensor '", name, "' does not have the shape (", want,
               ") that the model section implies");
  }
  if (t->type != type) {
    const bool cache = name.rfind("key_", 0) == 0 || name.rfind("value_", 0) == 0 || name.rfind("past_", 0) == 0;
    return Err(ExitCode::kManifest, m.path, ": graphs.", graph, " tensor '", name, "' is ", elem_type_name(t->type), ", expected ",
               elem_type_name(type), cache ? " (the type of the step graph's caches)" : "");
  }
  return engine->bind(name, data, shape);
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

Status Session::create(const Manifest& m, Backend* backend, std::unique_ptr<Session>* out) {
  std::unique_ptr<Session> s(new Session(m, backend));
  NBP_RT_TRY(s->init());
  *out = std::move(s);
  return Status::Ok();
}

Status Session::alloc(int64_t elems, ElemType t, const char* what, Buffer* out) {
  return backend_->alloc(static_cast<size_t>(elems) * elem_size(t), what, out);
}

Status Session::init() {
  const ModelSpec& s = m_.model;
  NBP_RT_TRY(backend_->open(m_, m_.prefill, &prefill_));
  NBP_RT_TRY(backend_->open(m_, m_.step, &step_));
  NBP_RT_TRY(backend_->open(m_, m_.decoder, &decoder_));
  if (s.prefix_kind == PrefixKind::kFrames) NBP_RT_TRY(backend_->open(m_, m_.encoder, &encoder_));
  if (s.hybrid_start) NBP_RT_TRY(backend_->open(m_, m_.token_step, &token_step_));

  // The KV caches hold the graphs' precision (float32, or float16/bfloat16 for a low-precision
  // export); every key and value tensor must have the step graph's cache type.
  kv_type_ = ElemType::kFloat32;
  for (const TensorSpec& t : m_.step.inputs) if (t.name == "past_key_0") kv_type_ = t.type;
  if (kv_type_ != ElemType::kFloat32 && kv_type_ != ElemType::kFloat16 && kv_type_ != ElemType::kBFloat16) {
    return Err(ExitCode::kManifest, m_.path, ": graphs.step tensor 'past_key_0' is ", elem_type_name(kv_type_),
               ", expected float32, float16 or bfloat16");
  }
  const int64_t R = s.graph_batch, P = s.prefix_len, L = s.block_len, V = s.vocab_size, S = s.start_len();
  const int64_t H = s.kv_heads, D = s.head_dim, F = P + S, N = s.max_cache_len;
  const std::vector<int64_t> prefill_kv{R, H, F, D}, cache_kv{R, H, N, D}, step_kv{R, H, L, D}, token_kv{R, H, 1, D};

  // Prefill: prefix -> logits of the first block (hybrid start: of its first token), keys and values
  // of the prefix and the start block. An unconditional model (P = 0) has a prefill graph without inputs.
  NBP_RT_TRY(alloc(R * L * V, ElemType::kFloat32, "logits", &logits_));
  if (P > 0) {
    NBP_RT_TRY(alloc(R * P, ElemType::kInt64, "prefix", &prefix_));
    NBP_RT_TRY(bind_checked(m_, "prefill", m_.prefill, prefill_.get(), "prefix", prefix_.data(), {R, P}, ElemType::kInt64));
  }
  if (s.hybrid_start) {  // the prefill and the token step share one token's logits
    NBP_RT_TRY(alloc(R * V, ElemType::kFloat32, "token logits", &token_logits_));
    NBP_RT_TRY(alloc(R, ElemType::kInt64, "token", &token_in_));
    NBP_RT_TRY(bind_checked(m_, "prefill", m_.prefill, prefill_.get(), "logits", token_logits_.data(), {R, 1, V}, ElemType::kFloat32));
  } else {
    NBP_RT_TRY(bind_checked(m_, "prefill", m_.prefill, prefill_.get(), "logits", logits_.data(), {R, L, V}, ElemType::kFloat32));
  }

  // Step: block tokens, their first position and the caches -> logits, the block's keys and values.
  NBP_RT_TRY(alloc(R * L, ElemType::kInt64, "block tokens", &tokens_in_));
  NBP_RT_TRY(alloc(1, ElemType::kInt64, "position", &position_));
  NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), "tokens", tokens_in_.data(), {R, L}, ElemType::kInt64));
  NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), "position", position_.data(), {1}, ElemType::kInt64));
  NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), "logits", logits_.data(), {R, L, V}, ElemType::kFloat32));

  if (s.hybrid_start) {
    NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, token_step_.get(), "tokens", token_in_.data(), {R, 1}, ElemType::kInt64));
    NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, token_step_.get(), "position", position_.data(), {1}, ElemType::kInt64));
    NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, token_step_.get(), "logits", token_logits_.data(), {R, 1, V}, ElemType::kFloat32));
  }

  const size_t layers = static_cast<size_t>(s.num_layers);
  for (auto* v : {&prefill_k_, &prefill_v_, &cache_k_, &cache_v_, &new_k_, &new_v_}) v->resize(layers);
  if (s.hybrid_start) {
    token_k_.resize(layers);
    token_v_.resize(layers);
  }
  for (size_t i = 0; i < layers; ++i) {
    NBP_RT_TRY(alloc(numel(prefill_kv), kv_type_, "prefill keys", &prefill_k_[i]));
    NBP_RT_TRY(alloc(numel(prefill_kv), kv_type_, "prefill values", &prefill_v_[i]));
    NBP_RT_TRY(alloc(numel(cache_kv), kv_type_, "key cache", &cache_k_[i]));
    NBP_RT_TRY(alloc(numel(cache_kv), kv_type_, "value cache", &cache_v_[i]));
    NBP_RT_TRY(alloc(numel(step_kv), kv_type_, "block keys", &new_k_[i]));
    NBP_RT_TRY(alloc(numel(step_kv), kv_type_, "block values", &new_v_[i]));
    NBP_RT_TRY(bind_checked(m_, "prefill", m_.prefill, prefill_.get(), layer_name("key", i), prefill_k_[i].data(), prefill_kv, kv_type_));
    NBP_RT_TRY(bind_checked(m_, "prefill", m_.prefill, prefill_.get(), layer_name("value", i), prefill_v_[i].data(), prefill_kv, kv_type_));
    NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), layer_name("past_key", i), cache_k_[i].data(), cache_kv, kv_type_));
    NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), layer_name("past_value", i), cache_v_[i].data(), cache_kv, kv_type_));
    NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), layer_name("key", i), new_k_[i].data(), step_kv, kv_type_));
    NBP_RT_TRY(bind_checked(m_, "step", m_.step, step_.get(), layer_name("value", i), new_v_[i].data(), step_kv, kv_type_));
    if (s.hybrid_start) {
      Engine* e = token_step_.get();
      NBP_RT_TRY(alloc(numel(token_kv), kv_type_, "token keys", &token_k_[i]));
      NBP_RT_TRY(alloc(numel(token_kv), kv_type_, "token values", &token_v_[i]));
      NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, e, layer_name("past_key", i), cache_k_[i].data(), cache_kv, kv_type_));
      NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, e, layer_name("past_value", i), cache_v_[i].data(), cache_kv, kv_type_));
      NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, e, layer_name("key", i), token_k_[i].data(), token_kv, kv_type_));
      NBP_RT_TRY(bind_checked(m_, "token_step", m_.token_step, e, layer_name("value", i), token_v_[i].data(), token_kv, kv_type_));
    }
  }

  NBP_RT_TRY(alloc(s.max_batch, ElemType::kInt64, "seeds", &seeds_));
  NBP_RT_TRY(alloc(s.max_batch * L, ElemType::kInt64, "sampled tokens", &sampled_));
  NBP_RT_TRY(alloc(s.max_batch * s.num_blocks * L, ElemType::kInt64, "video tokens", &sequence_));

  const int64_t grid = s.grid[0] * s.grid[1] * s.grid[2];
  NBP_RT_TRY(alloc(grid, ElemType::kInt64, "codes", &codes_));
  NBP_RT_TRY(alloc(3 * m_.video.frames * m_.video.height * m_.video.width, ElemType::kFloat32, "video", &video_));
  NBP_RT_TRY(bind_checked(m_, "decoder", m_.decoder, decoder_.get(), "codes", codes_.data(), {1, s.grid[0], s.grid[1], s.grid[2]}, ElemType::kInt64));
  NBP_RT_TRY(bind_checked(m_, "decoder", m_.decoder, decoder_.get(), "video", video_.data(), {1, 3, m_.video.frames, m_.video.height, m_.video.width}, ElemType::kFloat32));
  if (encoder_) {
    const std::vector<int64_t>& vin = m_.encoder.inputs.at(0).shape;  // (1, 3, Tc, H, W)
    const std::vector<int64_t> vin_shape{1, 3, vin.at(2), m_.video.height, m_.video.width};
    const std::vector<int64_t> cout_shape{1, s.context_frames, s.grid[1], s.grid[2]};
    NBP_RT_TRY(alloc(numel(vin_shape), ElemType::kFloat32, "context video", &enc_video_));
    NBP_RT_TRY(alloc(numel(cout_shape), ElemType::kInt64, "context codes", &enc_codes_));
    NBP_RT_TRY(bind_checked(m_, "encoder", m_.encoder, encoder_.get(), "video", enc_video_.data(), vin_shape, ElemType::kFloat32));
    NBP_RT_TRY(bind_checked(m_, "encoder", m_.encoder, encoder_.get(), "codes", enc_codes_.data(), cout_shape, ElemType::kInt64));
  }
  return Status::Ok();
}

Status Session::sample(int64_t count, uint64_t offset, const SamplingConfig& cfg, bool guided, const Buffer& logits,
                       int64_t len) {
  const ModelSpec& s = m_.model;
  SamplingParams p;
  p.logits = logits.data();
  p.logits_stride_b = len * s.vocab_size;
  p.logits_stride_l = s.vocab_size;
  if (guided) {  // the unconditional stream sits max_batch rows below the conditional one
    p.uncond_logits = logits.as<float>() + s.max_batch * len * s.vocab_size;
    p.uncond_stride_b = p.logits_stride_b;
    p.uncond_stride_l = p.logits_stride_l;
    p.guidance_scale = cfg.guidance_scale;
  }
  p.dtype = DType::kFloat32;
  p.seeds = seeds_.as<int64_t>();
  p.offset = offset;
  p.tokens = sampled_.as<int64_t>();
  p.batch = count;
  p.block_len = len;
  p.vocab = s.vocab_size;
  p.temperature = cfg.temperature;
  p.top_k = cfg.top_k;
  p.top_p = cfg.top_p;
  if (validate_sampling(p) != nbp::Status::kOk) {
    return Err(ExitCode::kUsage, "sampling options: temperature must be >= 0, top-k >= 0 and top-p in (0, 1]");
  }
  return backend_->sample(p);
}

// Copies `count` rows of `row` bytes (source rows `src_pitch` apart) into the graph input `in`, once
// per stream: the unconditional stream's rows sit max_batch rows below the conditional ones.
Status Session::feed_streams(Buffer& in, const void* src, size_t src_pitch, size_t row, int64_t count) {
  const ModelSpec& s = m_.model;
  for (int64_t stream = 0; stream < (s.unconditional_stream ? 2 : 1); ++stream) {
    auto* dst = static_cast<uint8_t*>(in.data()) + row * static_cast<size_t>(stream * s.max_batch);
    NBP_RT_TRY(backend_->copy_2d(dst, row, src, src_pitch, row, count));
  }
  return Status::Ok();
}

// Appends the sampled block to the video tokens and feeds it to the next step (both streams).
Status Session::store_block(int64_t count, int64_t block) {
  const ModelSpec& s = m_.model;
  const size_t row = static_cast<size_t>(s.block_len) * sizeof(int64_t);
  const size_t seq_row = row * static_cast<size_t>(s.num_blocks);
  auto* seq = static_cast<uint8_t*>(sequence_.data()) + row * static_cast<size_t>(block);
  NBP_RT_TRY(backend_->copy_2d(seq, seq_row, sampled_.data(), row, row, count));
  return feed_streams(tokens_in_, sampled_.data(), row, row, count);
}

Status Session::append_kv(const std::vector<Buffer>& keys, const std::vector<Buffer>& values, int64_t position,
                          int64_t width) {
  const ModelSpec& s = m_.model;
  const size_t D = static_cast<size_t>(s.head_dim) * elem_size(kv_type_);
  const size_t rows = static_cast<size_t>(s.graph_batch * s.kv_heads);
  const size_t pitch = D * static_cast<size_t>(s.max_cache_len), bytes = D * static_cast<size_t>(width);
  for (size_t i = 0; i < cache_k_.size(); ++i) {
    auto* k_at = static_cast<uint8_t*>(cache_k_[i].data()) + D * static_cast<size_t>(position);
    auto* v_at = static_cast<uint8_t*>(cache_v_[i].data()) + D * static_cast<size_t>(position);
    NBP_RT_TRY(backend_->copy_2d(k_at, pitch, keys[i].data(), bytes, bytes, rows));
    NBP_RT_TRY(backend_->copy_2d(v_at, pitch, values[i].data(), bytes, bytes, rows));
  }
  return Status::Ok();
}

// Token j of block 0 is drawn with offset j (as nbp_ext.generate counts its draws); tokens
// 0 .. L - 2 then go through the token step at positions P + 1 + j, and the whole block 0 becomes
// the input of the first block step.
Status Session::hybrid_first_block(int64_t count, const SamplingConfig& cfg, bool guided) {
  const ModelSpec& s = m_.model;
  const int64_t L = s.block_len;
  const size_t tok = sizeof(int64_t), seq_row = tok * static_cast<size_t>(s.num_blocks * L);
  for (int64_t j = 0; j < L; ++j) {
    NBP_RT_TRY(sample(count, static_cast<uint64_t>(j), cfg, guided, token_logits_, 1));
    auto* seq = static_cast<uint8_t*>(sequence_.data()) + tok * static_cast<size_t>(j);
    NBP_RT_TRY(backend_->copy_2d(seq, seq_row, sampled_.data(), tok, tok, count));
    if (j + 1 == L) break;
    NBP_RT_TRY(feed_streams(token_in_, sampled_.data(), tok, tok, count));
    const int64_t position = s.prefix_len + 1 + j;
    NBP_RT_TRY(backend_->upload(position_.data(), &position, sizeof(position)));
    watchdog_enter("the token-step graph");
    NBP_RT_TRY(token_step_->run());
    NBP_RT_TRY(append_kv(token_k_, token_v_, position, 1));
  }
  return feed_streams(tokens_in_, sequence_.data(), seq_row, tok * static_cast<size_t>(L), count);
}

Status Session::generate(const int64_t* cond_prefix, const int64_t* uncond_prefix, const int64_t* seeds, int64_t count,
                         const SamplingConfig& cfg, int64_t* tokens_out, GenerateTiming* timing) {
  const ModelSpec& s = m_.model;
  if (count < 1 || count > s.max_batch) {
    return Err(ExitCode::kUsage, "--batch: between 1 and the export's max batch ", s.max_batch, ", got ", count);
  }
  const bool guided = s.unconditional_stream && cfg.guidance_scale != 1.0;
  const auto start = std::chrono::steady_clock::now();

  // Prefix rows: the videos, then copies of the first one as padding; the unconditional stream likewise.
  const int64_t P = s.prefix_len;
  std::vector<int64_t> prefix(static_cast<size_t>(s.graph_batch * P));
  for (int64_t stream = 0; stream < (s.unconditional_stream ? 2 : 1); ++stream) {
    const int64_t* src = stream == 0 || !uncond_prefix ? cond_prefix : uncond_prefix;
    for (int64_t b = 0; b < s.max_batch; ++b) {
      const int64_t from = b < count ? b : 0;
      for (int64_t j = 0; j < P; ++j) prefix[(stream * s.max_batch + b) * P + j] = src[from * P + j];
    }
  }
  if (P > 0) NBP_RT_TRY(backend_->upload(prefix_.data(), prefix.data(), prefix.size() * sizeof(int64_t)));
  NBP_RT_TRY(backend_->upload(seeds_.data(), seeds, static_cast<size_t>(count) * sizeof(int64_t)));

  // Prefill, then its keys and values become the first entries of the caches.
  watchdog_enter("the prefill graph");
  NBP_RT_TRY(prefill_->run());
  NBP_RT_TRY(append_kv(prefill_k_, prefill_v_, 0, s.prefix_len + s.start_len()));
  // Block 0: drawn at once from the prefill's logits, or (hybrid start) token by token; `first` is
  // the sampling offset of block 1 (draws are counted one per forward pass).
  int64_t first = 1;
  if (s.hybrid_start) {
    NBP_RT_TRY(hybrid_first_block(count, cfg, guided));
    first = s.block_len;
  } else {
    NBP_RT_TRY(sample(count, 0, cfg, guided, logits_, s.block_len));
    NBP_RT_TRY(store_block(count, 0));
  }

  // One step per remaining block: block k - 1 goes in, the logits of block k come out.
  for (int64_t k = 1; k < s.num_blocks; ++k) {
    const int64_t position = s.first_block_position + (k - 1) * s.block_len;
    NBP_RT_TRY(backend_->upload(position_.data(), &position, sizeof(position)));
    watchdog_enter("the block-step graph");
    NBP_RT_TRY(step_->run());
    NBP_RT_TRY(append_kv(new_k_, new_v_, position, s.block_len));
    NBP_RT_TRY(sample(count, static_cast<uint64_t>(first + k - 1), cfg, guided, logits_, s.block_len));
    NBP_RT_TRY(store_block(count, k));
  }
  NBP_RT_TRY(backend_->synchronize());
  NBP_RT_TRY(backend_->download(tokens_out, sequence_.data(),
                                static_cast<size_t>(count * s.num_blocks * s.block_len) * sizeof(int64_t)));
  if (timing) {
    timing->generate_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    timing->blocks = s.num_blocks + (s.hybrid_start ? s.block_len - 1 : 0);
  }
  return Status::Ok();
}

Status Session::decode(const int64_t* codes, float* video) {
  const ModelSpec& s = m_.model;
  NBP_RT_TRY(backend_->upload(codes_.data(), codes, static_cast<size_t>(s.grid[0] * s.grid[1] * s.grid[2]) * sizeof(int64_t)));
  watchdog_enter("the decoder graph");
  NBP_RT_TRY(decoder_->run());
  NBP_RT_TRY(backend_->synchronize());
  return backend_->download(video, video_.data(), video_.bytes());
}

Status Session::encode(const float* video, int64_t* codes) {
  if (!encoder_) return Err(ExitCode::kUsage, "--context: this export has a class prefix, not context frames");
  NBP_RT_TRY(backend_->upload(enc_video_.data(), video, enc_video_.bytes()));
  watchdog_enter("the encoder graph");
  NBP_RT_TRY(encoder_->run());
  NBP_RT_TRY(backend_->synchronize());
  return backend_->download(codes, enc_codes_.data(), enc_codes_.bytes());
}

}  // namespace nbp::rt
