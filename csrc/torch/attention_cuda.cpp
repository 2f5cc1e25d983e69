// CUDA implementations of nbp::attention_fwd and nbp::attention_bwd, on the current torch stream.
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "attention_params.h"

namespace nbp {
namespace {

std::tuple<at::Tensor, at::Tensor> attention_fwd_cuda_op(const at::Tensor& q, const at::Tensor& k,
                                                         const at::Tensor& v, int64_t block_size,
                                                         int64_t prefix_len, int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  const c10::cuda::CUDAGuard guard(q.device());
  AttentionTensors t = prepare_forward(p, q, k, v);
  if (p.q_len > 0)
    check_status(attention_forward_cuda(p, c10::cuda::getCurrentCUDAStream().stream()), "attention_fwd");
  return {t.out, t.lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cuda_op(
    const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& out,
    const at::Tensor& lse, int64_t block_size, int64_t prefix_len, int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  const c10::cuda::CUDAGuard guard(q.device());
  AttentionTensors t = prepare_backward(p, dout, q, k, v, out, lse);
  if (p.q_len == 0) return {t.dq, t.dk, t.dv};
  const int64_t ws_bytes = attention_backward_cuda_workspace_bytes(p);
  at::Tensor ws = at::empty({std::max<int64_t>(ws_bytes, 1)}, t.q.options().dtype(at::kByte));
  check_status(attention_backward_cuda(p, ws.data_ptr(), c10::cuda::getCurrentCUDAStream().stream()),
               "attention_bwd");
  return {t.dq, t.dk, t.dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(nbp, CUDA, m) {
  m.impl("attention_fwd", &attention_fwd_cuda_op);
  m.impl("attention_bwd", &attention_bwd_cuda_op);
}

}  // namespace nbp
