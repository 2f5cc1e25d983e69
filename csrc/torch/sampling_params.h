// Tensor -> SamplingParams, shared by the CPU and CUDA bindings. Every check names its argument.
#pragma once

#include <cmath>
#include <optional>

#include "../kernels/sampling.h"
#include "checks.h"

namespace nbp {

struct SamplingTensors {
  Tensor logits, uncond, seeds;
};

inline SamplingParams make_sampling_params(const Tensor& logits_in, const Tensor& seeds_in,
                                           int64_t offset, double temperature, int64_t top_k, double top_p,
                                           double guidance_scale, const std::optional<Tensor>& uncond_in,
                                           SamplingTensors* keep) {
  check_rank(logits_in, 3, "logits", "(B, L, V)");
  const DType dt = to_kernel_dtype(logits_in, "logits");
  NBP_CHECK(logits_in.size(2) >= 1 && logits_in.size(2) < (int64_t{1} << 31),
            "logits.shape[-1] (the vocabulary) must be in [1, 2^31), got ", logits_in.size(2));
  NBP_CHECK_TYPE(seeds_in.scalar_type() == ScalarType::Long, "seeds must be an int64 tensor, got ",
                 seeds_in.scalar_type());
  NBP_CHECK(seeds_in.dim() == 1 && seeds_in.size(0) == logits_in.size(0),
            "seeds must have shape (B,) = (", logits_in.size(0), ",), got ", shape_of(seeds_in));
  check_same_device(logits_in, "logits", seeds_in, "seeds");
  NBP_CHECK(offset >= 0, "offset must be >= 0, got ", offset);
  NBP_CHECK(std::isfinite(temperature) && temperature >= 0.0,
            "temperature must be a finite number >= 0 (0 means greedy), got ", temperature);
  NBP_CHECK(top_k >= 0, "top_k must be >= 0 (0 turns it off), got ", top_k);
  NBP_CHECK(top_p > 0.0 && top_p <= 1.0, "top_p must be in (0, 1], got ", top_p);
  NBP_CHECK(std::isfinite(guidance_scale), "guidance_scale must be finite, got ", guidance_scale);

  keep->logits = rows_contiguous(logits_in);
  keep->seeds = torch::stable::contiguous(seeds_in);
  SamplingParams p;
  if (uncond_in.has_value()) {
    const Tensor& u = *uncond_in;
    NBP_CHECK(same_shape(u, logits_in), "uncond_logits must have the shape of logits ", shape_of(logits_in),
              ", got ", shape_of(u));
    NBP_CHECK_TYPE(u.scalar_type() == logits_in.scalar_type(), "uncond_logits must have the dtype of logits (",
                   logits_in.scalar_type(), "), got ", u.scalar_type());
    check_same_device(logits_in, "logits", u, "uncond_logits");
    keep->uncond = rows_contiguous(u);
    p.uncond_logits = keep->uncond.data_ptr();
    p.uncond_stride_b = keep->uncond.stride(0);
    p.uncond_stride_l = keep->uncond.stride(1);
  }
  p.logits = keep->logits.data_ptr();
  p.logits_stride_b = keep->logits.stride(0);
  p.logits_stride_l = keep->logits.stride(1);
  p.dtype = dt;
  p.seeds = static_cast<const int64_t*>(keep->seeds.data_ptr());
  p.offset = static_cast<uint64_t>(offset);
  p.batch = logits_in.size(0);
  p.block_len = logits_in.size(1);
  p.vocab = logits_in.size(2);
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.guidance_scale = guidance_scale;
  return p;
}

}  // namespace nbp
