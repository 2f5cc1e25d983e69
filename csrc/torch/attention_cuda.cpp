// CUDA implementations of nbp::attention_fwd and nbp::attention_bwd, on the current torch stream.
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/library.h>

#include <algorithm>

#include "attention_params.h"
#include "cuda_stream.h"

namespace nbp {
namespace {

std::tuple<Tensor, Tensor> attention_fwd_cuda_op(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 int64_t block_size, int64_t prefix_len, int64_t q_offset,
                                                 double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  const torch::stable::accelerator::DeviceGuard guard(q.get_device_index());
  AttentionTensors t = prepare_forward(p, q, k, v);
  if (p.q_len > 0)
    check_status(attention_forward_cuda(p, current_cuda_stream(q.get_device_index())), "attention_fwd");
  return {t.out, t.lse};
}

std::tuple<Tensor, Tensor, Tensor> attention_bwd_cuda_op(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                         const Tensor& v, const Tensor& out, const Tensor& lse,
                                                         int64_t block_size, int64_t prefix_len, int64_t q_offset,
                                                         double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  const torch::stable::accelerator::DeviceGuard guard(q.get_device_index());
  AttentionTensors t = prepare_backward(p, dout, q, k, v, out, lse);
  if (p.q_len == 0) return {t.dq, t.dk, t.dv};
  const int64_t ws_bytes = attention_backward_cuda_workspace_bytes(p);
  Tensor ws = new_contiguous(t.q, {std::max<int64_t>(ws_bytes, 1)}, ScalarType::Byte);
  check_status(attention_backward_cuda(p, ws.data_ptr(), current_cuda_stream(q.get_device_index())),
               "attention_bwd");
  return {t.dq, t.dk, t.dv};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(nbp, CUDA, m) {
  m.impl("attention_fwd", TORCH_BOX(&attention_fwd_cuda_op));
  m.impl("attention_bwd", TORCH_BOX(&attention_bwd_cuda_op));
}

}  // namespace nbp
