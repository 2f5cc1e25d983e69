// Block-causal attention, framework-free: raw pointers, element strides, a thread count or a stream.
//
// Visibility (docs/design.md): with blk(i) = 0 for i < P and 1 + (i - P) / L otherwise, the query at
// absolute position i sees key j iff blk(j) <= blk(i). The visible keys of a query are therefore a
// prefix [0, key_end(i)) of the key sequence, which is what every kernel exploits to skip tiles.
#pragma once

#include <cstdint>

#include "common.h"

namespace nbp {

// One direction of the op's tensors. Layout (B, heads, N, D), last dimension contiguous.
struct Strides4 {
  int64_t batch = 0;
  int64_t head = 0;
  int64_t seq = 0;
};

struct AttentionParams {
  // Forward inputs.
  const void* q = nullptr;  // (B, H, Nq, D)
  const void* k = nullptr;  // (B, Hkv, Nk, D)
  const void* v = nullptr;  // (B, Hkv, Nk, D)
  Strides4 q_stride, k_stride, v_stride;

  // Forward outputs (inputs of the backward pass).
  void* out = nullptr;      // (B, H, Nq, D), same dtype as q
  Strides4 o_stride;
  float* lse = nullptr;     // (B, H, Nq) fp32, contiguous: natural-log log-sum-exp of the scaled scores

  // Backward only.
  const void* dout = nullptr;  // (B, H, Nq, D)
  Strides4 do_stride;
  void* dq = nullptr;          // (B, H, Nq, D)
  void* dk = nullptr;          // (B, Hkv, Nk, D)
  void* dv = nullptr;          // (B, Hkv, Nk, D)
  Strides4 dq_stride, dk_stride, dv_stride;

  int64_t batch = 0, heads = 0, kv_heads = 0, q_len = 0, k_len = 0, head_dim = 0;
  int64_t block_size = 1;   // L >= 1
  int64_t prefix_len = 0;   // P >= 0
  int64_t q_offset = 0;     // absolute position of query 0
  float scale = 1.0f;       // multiplies q.k
  DType dtype = DType::kFloat32;
};

constexpr int64_t kMaxHeadDim = 256;

// Block index of an absolute position.
NBP_HOST_DEVICE int64_t block_of(int64_t pos, int64_t prefix_len, int64_t block_size) {
  return pos < prefix_len ? 0 : 1 + (pos - prefix_len) / block_size;
}

// One past the last key visible from absolute query position `pos` (before clamping to k_len).
NBP_HOST_DEVICE int64_t key_end(int64_t pos, int64_t prefix_len, int64_t block_size) {
  return pos < prefix_len ? prefix_len : prefix_len + ((pos - prefix_len) / block_size + 1) * block_size;
}

// Checks sizes that every backend needs (not pointers). kOk when the kernels can run.
Status validate_attention(const AttentionParams& p);

// CPU (OpenMP when built with it). num_threads <= 0 uses the OpenMP default.
Status attention_forward_cpu(const AttentionParams& p, int num_threads);
Status attention_backward_cpu(const AttentionParams& p, int num_threads);

// CUDA, launched on `stream` (a cudaStream_t). Defined only in builds with CUDA; callers check
// cuda_available() (sampling.h) or the build info first. Workspace for the backward pass is
// allocated by the caller: see attention_backward_cuda_workspace_bytes.
Status attention_forward_cuda(const AttentionParams& p, void* stream);
int64_t attention_backward_cuda_workspace_bytes(const AttentionParams& p);
Status attention_backward_cuda(const AttentionParams& p, void* workspace, void* stream);

}  // namespace nbp
