// CPU implementation of nbp::sample_block.
#include <torch/csrc/stable/library.h>

#include "sampling_params.h"

namespace nbp {
namespace {

Tensor sample_block_cpu_op(const Tensor& logits, const Tensor& seeds, int64_t offset, double temperature,
                           int64_t top_k, double top_p, double guidance_scale, const std::optional<Tensor>& uncond_logits) {
  SamplingTensors keep;
  SamplingParams p =
      make_sampling_params(logits, seeds, offset, temperature, top_k, top_p, guidance_scale, uncond_logits, &keep);
  Tensor tokens = new_contiguous(logits, {logits.size(0), logits.size(1)}, ScalarType::Long);
  if (tokens.numel() == 0) return tokens;
  p.tokens = static_cast<int64_t*>(tokens.data_ptr());
  const Status st = sample_block_cpu(p, static_cast<int>(torch::stable::get_num_threads()));
  NBP_CHECK(st != Status::kNonFiniteLogits,
            "logits must be finite or -inf, with at least one finite entry per row (after guidance); got NaN, "
            "+inf or a row with every entry -inf");
  check_status(st, "sample_block");
  return tokens;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(nbp, CPU, m) { m.impl("sample_block", TORCH_BOX(&sample_block_cpu_op)); }

}  // namespace nbp
