// Host entry points of the CUDA block-causal attention (attention.h): argument checks, then
// dispatch on the storage dtype to the per-dtype launchers (attention_cuda_{fwd,bwd}_<dtype>.cu).
#include <climits>

#include "attention.h"
#include "attention_cuda.cuh"

namespace nbp {
namespace {

// Limits of the CUDA kernels on top of validate_attention: in-tile indices are 32-bit ints and
// (batch, head) pairs index grid.x.
Status check_cuda_sizes(const AttentionParams& p) {
  if (cuda_attn::head_dim_bucket(p.head_dim) == 0) return Status::kInvalidArgument;
  if (p.batch < 0 || p.heads < 0 || p.kv_heads < 1 || p.q_len < 0 || p.k_len < 1) return Status::kInvalidArgument;
  if (p.heads % p.kv_heads != 0) return Status::kInvalidArgument;
  if (p.block_size < 1 || p.prefix_len < 0 || p.q_offset < 0) return Status::kInvalidArgument;
  constexpr int64_t kMaxLen = INT_MAX - 1024;  // room for n0 + tile width without overflow
  if (p.q_len > kMaxLen || p.k_len > kMaxLen) return Status::kInvalidArgument;
  if (p.batch * p.heads > INT_MAX || p.batch * p.kv_heads > INT_MAX) return Status::kInvalidArgument;
  if (p.dtype != DType::kFloat32 && p.dtype != DType::kFloat16 && p.dtype != DType::kBFloat16) {
    return Status::kInvalidArgument;
  }
  return Status::kOk;
}

}  // namespace

Status attention_forward_cuda(const AttentionParams& p, void* stream) {
  Status st = validate_attention(p);
  if (st != Status::kOk) return st;
  st = check_cuda_sizes(p);
  if (st != Status::kOk) return st;
  if (p.batch == 0 || p.heads == 0 || p.q_len == 0) return Status::kOk;  // nothing to write
  if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.out == nullptr) return Status::kInvalidArgument;
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (p.dtype) {
    case DType::kFloat32: return cuda_attn::forward_fp32(p, s);
    case DType::kFloat16: return cuda_attn::forward_fp16(p, s);
    case DType::kBFloat16: return cuda_attn::forward_bf16(p, s);
  }
  return Status::kInvalidArgument;
}

int64_t attention_backward_cuda_workspace_bytes(const AttentionParams& p) {
  if (p.batch <= 0 || p.heads <= 0 || p.q_len <= 0 || p.head_dim <= 0) return 0;
  return cuda_attn::workspace_delta_bytes(p) + cuda_attn::workspace_dq_bytes(p);
}

Status attention_backward_cuda(const AttentionParams& p, void* workspace, void* stream) {
  Status st = validate_attention(p);
  if (st != Status::kOk) return st;
  st = check_cuda_sizes(p);
  if (st != Status::kOk) return st;
  if (p.batch == 0) return Status::kOk;  // nothing to write
  if (p.k == nullptr || p.v == nullptr || p.dk == nullptr || p.dv == nullptr) return Status::kInvalidArgument;
  if (p.heads > 0 && p.q_len > 0) {
    if (p.q == nullptr || p.out == nullptr || p.lse == nullptr || p.dout == nullptr || p.dq == nullptr ||
        workspace == nullptr) {
      return Status::kInvalidArgument;
    }
  }
  const cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (p.dtype) {
    case DType::kFloat32: return cuda_attn::backward_fp32(p, workspace, s);
    case DType::kFloat16: return cuda_attn::backward_fp16(p, workspace, s);
    case DType::kBFloat16: return cuda_attn::backward_bf16(p, workspace, s);
  }
  return Status::kInvalidArgument;
}

}  // namespace nbp
