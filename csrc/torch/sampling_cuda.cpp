// CUDA implementation of nbp::sample_block, on the current torch stream and without host
// synchronisation: rows with invalid logits come back as -1 tokens (nbp_ext.ops checks them).
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>

#include <algorithm>

#include "cuda_stream.h"
#include "sampling_params.h"

namespace nbp {
namespace {

Tensor sample_block_cuda_op(const Tensor& logits, const Tensor& seeds, int64_t offset, double temperature,
                            int64_t top_k, double top_p, double guidance_scale,
                            const std::optional<Tensor>& uncond_logits) {
  SamplingTensors keep;
  SamplingParams p =
      make_sampling_params(logits, seeds, offset, temperature, top_k, top_p, guidance_scale, uncond_logits, &keep);
  const torch::stable::accelerator::DeviceGuard guard(logits.get_device_index());
  Tensor tokens = new_contiguous(logits, {logits.size(0), logits.size(1)}, ScalarType::Long);
  if (tokens.numel() == 0) return tokens;
  p.tokens = static_cast<int64_t*>(tokens.data_ptr());
  const int64_t ws_bytes = sample_block_cuda_workspace_bytes(p);
  Tensor ws = new_contiguous(logits, {std::max<int64_t>(ws_bytes, 1)}, ScalarType::Byte);
  check_status(sample_block_cuda(p, ws.data_ptr(), nullptr, current_cuda_stream(logits.get_device_index())),
               "sample_block");
  return tokens;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(nbp, CUDA, m) { m.impl("sample_block", TORCH_BOX(&sample_block_cuda_op)); }

}  // namespace nbp
