// CPU implementation of nbp::sample_block.
#include <torch/library.h>

#include "sampling_params.h"

namespace nbp {
namespace {

at::Tensor sample_block_cpu_op(const at::Tensor& logits, const at::Tensor& seeds, int64_t offset,
                               double temperature, int64_t top_k, double top_p, double cfg_scale,
                               const std::optional<at::Tensor>& uncond_logits) {
  SamplingTensors keep;
  SamplingParams p =
      make_sampling_params(logits, seeds, offset, temperature, top_k, top_p, cfg_scale, uncond_logits, &keep);
  at::Tensor tokens = at::empty({logits.size(0), logits.size(1)}, logits.options().dtype(at::kLong));
  if (tokens.numel() == 0) return tokens;
  p.tokens = tokens.data_ptr<int64_t>();
  const Status st = sample_block_cpu(p, at::get_num_threads());
  NBP_CHECK(st != Status::kNonFiniteLogits,
            "logits must be finite or -inf, with at least one finite entry per row (after guidance); got NaN, "
            "+inf or a row with every entry -inf");
  check_status(st, "sample_block");
  return tokens;
}

}  // namespace

TORCH_LIBRARY_IMPL(nbp, CPU, m) { m.impl("sample_block", &sample_block_cpu_op); }

}  // namespace nbp
