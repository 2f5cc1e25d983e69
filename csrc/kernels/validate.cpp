// Size checks shared by every backend of the kernels. The torch bindings check tensors first and
// give detailed messages; these checks protect the framework-free entry points (C++ runtime).
#include "attention.h"
#include "sampling.h"

namespace nbp {

Status validate_attention(const AttentionParams& p) {
  if (p.batch < 1 || p.heads < 1 || p.kv_heads < 1 || p.q_len < 1 || p.k_len < 1) return Status::kInvalidArgument;
  if (p.heads % p.kv_heads != 0) return Status::kInvalidArgument;
  if (p.head_dim < 1 || p.head_dim > kMaxHeadDim) return Status::kInvalidArgument;
  if (p.block_size < 1 || p.prefix_len < 0 || p.q_offset < 0) return Status::kInvalidArgument;
  return Status::kOk;
}

Status validate_sampling(const SamplingParams& p) {
  if (p.batch < 1 || p.block_len < 1 || p.vocab < 1) return Status::kInvalidArgument;
  if (!(p.temperature >= 0.0)) return Status::kInvalidArgument;
  if (!(p.top_p > 0.0 && p.top_p <= 1.0)) return Status::kInvalidArgument;
  if (p.logits == nullptr || p.seeds == nullptr || p.tokens == nullptr) return Status::kInvalidArgument;
  return Status::kOk;
}

}  // namespace nbp
