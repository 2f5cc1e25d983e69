// CPU implementations of nbp::attention_fwd and nbp::attention_bwd.
#include <torch/csrc/stable/library.h>

#include "attention_params.h"

namespace nbp {
namespace {

std::tuple<Tensor, Tensor> attention_fwd_cpu(const Tensor& q, const Tensor& k, const Tensor& v, int64_t block_size,
                                             int64_t prefix_len, int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  AttentionTensors t = prepare_forward(p, q, k, v);
  if (p.q_len > 0)
    check_status(attention_forward_cpu(p, static_cast<int>(torch::stable::get_num_threads())), "attention_fwd");
  return {t.out, t.lse};
}

std::tuple<Tensor, Tensor, Tensor> attention_bwd_cpu(const Tensor& dout, const Tensor& q, const Tensor& k,
                                                     const Tensor& v, const Tensor& out, const Tensor& lse,
                                                     int64_t block_size, int64_t prefix_len, int64_t q_offset,
                                                     double scale) {
  AttentionParams p = make_attention_params(q, k, v, block_size, prefix_len, q_offset, scale);
  AttentionTensors t = prepare_backward(p, dout, q, k, v, out, lse);
  if (p.q_len > 0)
    check_status(attention_backward_cpu(p, static_cast<int>(torch::stable::get_num_threads())), "attention_bwd");
  return {t.dq, t.dk, t.dv};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(nbp, CPU, m) {
  m.impl("attention_fwd", TORCH_BOX(&attention_fwd_cpu));
  m.impl("attention_bwd", TORCH_BOX(&attention_bwd_cpu));
}

}  // namespace nbp
