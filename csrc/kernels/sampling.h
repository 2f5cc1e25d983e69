// Parallel block sampling, framework-free. Every (row b, position l) of a (B, L, V) logits tensor is
// drawn independently:
//
//   1. guidance   x = u + s * (c - u)          (only when uncond logits are given; -inf if c or u is)
//   2. temperature T: T == 0 is greedy (the lowest index of the maximum x), else it scales step 4
//   3. top-k      keep x >= (k-th largest x)   (k <= 0 or k >= V: keep all; ties at the cut are kept)
//   4. softmax    e = exp((x - max x) * (1 / T)) over the kept set, S = sum e
//   5. top-p      sort e descending, m = the fewest entries whose sum >= p * S, keep e >= e_(m)
//   6. draw       u = sampling_uniform(seed_b, offset, l) (philox.h); the token is the first kept index
//                 v, in vocabulary order, whose running sum of kept e exceeds u * (sum of kept e)
//
// Arithmetic is fp64 throughout, so the CPU and CUDA kernels and the PyTorch reference pick the same
// token except when u lands within rounding error (~1e-15) of a boundary between two tokens.
// Entries of -inf are disallowed tokens; NaN or +inf, or a row with no finite entry, is an error.
#pragma once

#include <cstdint>

#include "common.h"

namespace nbp {

struct SamplingParams {
  const void* logits = nullptr;         // (B, L, V), rows contiguous in V
  const void* uncond_logits = nullptr;  // (B, L, V) or nullptr when guidance is off
  int64_t logits_stride_b = 0, logits_stride_l = 0;
  int64_t uncond_stride_b = 0, uncond_stride_l = 0;
  DType dtype = DType::kFloat32;        // both logits tensors share it

  const int64_t* seeds = nullptr;       // (B,) per-row seeds (bits reinterpreted as uint64)
  uint64_t offset = 0;                  // step counter
  int64_t* tokens = nullptr;            // (B, L) contiguous output; -1 marks a row that failed (CUDA)

  int64_t batch = 0, block_len = 0, vocab = 0;
  double temperature = 1.0;  // >= 0; 0 means greedy
  int64_t top_k = 0;         // <= 0: off
  double top_p = 1.0;        // in (0, 1]; 1: off
  double guidance_scale = 1.0;    // used only with uncond_logits
};

Status validate_sampling(const SamplingParams& p);

// CPU (OpenMP when built with it). Returns kNonFiniteLogits if any row is invalid.
Status sample_block_cpu(const SamplingParams& p, int num_threads);

// CUDA on `stream`. Never synchronises: invalid rows get token -1 and, if `error_flag` (device int32)
// is not null, set it to 1, so callers can check once after a whole loop.
int64_t sample_block_cuda_workspace_bytes(const SamplingParams& p);
Status sample_block_cuda(const SamplingParams& p, void* workspace, int32_t* error_flag, void* stream);

// True when this build contains the CUDA kernels.
bool cuda_kernels_built();

}  // namespace nbp
