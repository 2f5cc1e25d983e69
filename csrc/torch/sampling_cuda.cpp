// CUDA implementation of nbp::sample_block, on the current torch stream and without host
// synchronisation: rows with invalid logits come back as -1 tokens (nbp_ext.ops checks them).
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "sampling_params.h"

namespace nbp {
namespace {

at::Tensor sample_block_cuda_op(const at::Tensor& logits, const at::Tensor& seeds, int64_t offset,
                                double temperature, int64_t top_k, double top_p, double cfg_scale,
                                const std::optional<at::Tensor>& uncond_logits) {
  SamplingTensors keep;
  SamplingParams p =
      make_sampling_params(logits, seeds, offset, temperature, top_k, top_p, cfg_scale, uncond_logits, &keep);
  const c10::cuda::CUDAGuard guard(logits.device());
  at::Tensor tokens = at::empty({logits.size(0), logits.size(1)}, logits.options().dtype(at::kLong));
  if (tokens.numel() == 0) return tokens;
  p.tokens = tokens.data_ptr<int64_t>();
  const int64_t ws_bytes = sample_block_cuda_workspace_bytes(p);
  at::Tensor ws = at::empty({std::max<int64_t>(ws_bytes, 1)}, logits.options().dtype(at::kByte));
  check_status(sample_block_cuda(p, ws.data_ptr(), nullptr, c10::cuda::getCurrentCUDAStream().stream()),
               "sample_block");
  return tokens;
}

}  // namespace

TORCH_LIBRARY_IMPL(nbp, CUDA, m) { m.impl("sample_block", &sample_block_cuda_op); }

}  // namespace nbp
