// CPU implementations of nbp::attention_fwd and nbp::attention_bwd.
#include <torch/library.h>

#include "attention_params.h"

namespace nbp {
namespace {

std::tuple<at::Tensor, at::Tensor> attention_fwd_cpu(const at::Tensor& q_in, const at::Tensor& k_in,
                                                     const at::Tensor& v_in, int64_t block_size,
                                                     int64_t prefix_len, int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q_in, k_in, v_in, block_size, prefix_len, q_offset, scale);
  const at::Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  at::Tensor out = at::empty_like(q, at::MemoryFormat::Contiguous);
  at::Tensor lse = at::empty({p.batch, p.heads, p.q_len}, q.options().dtype(at::kFloat));
  if (p.q_len == 0 || p.batch == 0 || p.heads == 0) return {out, lse};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  p.q_stride = strides_of(q);
  p.k_stride = strides_of(k);
  p.v_stride = strides_of(v);
  p.o_stride = strides_of(out);
  check_status(attention_forward_cpu(p, at::get_num_threads()), "attention_fwd");
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cpu(
    const at::Tensor& dout_in, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
    const at::Tensor& out_in, const at::Tensor& lse_in, int64_t block_size, int64_t prefix_len,
    int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q_in, k_in, v_in, block_size, prefix_len, q_offset, scale);
  NBP_CHECK(dout_in.sizes() == q_in.sizes() && out_in.sizes() == q_in.sizes(),
            "dout and out must have the shape of q ", q_in.sizes(), ", got ", dout_in.sizes(), " and ",
            out_in.sizes());
  NBP_CHECK(dout_in.scalar_type() == q_in.scalar_type() && out_in.scalar_type() == q_in.scalar_type(),
            "dout and out must have the dtype of q (", q_in.scalar_type(), ")");
  NBP_CHECK(lse_in.scalar_type() == at::kFloat && lse_in.dim() == 3 && lse_in.size(0) == p.batch &&
                lse_in.size(1) == p.heads && lse_in.size(2) == p.q_len,
            "lse must be float32 of shape (B, H, Nq) = (", p.batch, ", ", p.heads, ", ", p.q_len, "), got ",
            lse_in.scalar_type(), " ", lse_in.sizes());
  const at::Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  const at::Tensor dout = rows_contiguous(dout_in), out = rows_contiguous(out_in), lse = lse_in.contiguous();
  at::Tensor dq = at::empty_like(q, at::MemoryFormat::Contiguous);
  at::Tensor dk = at::empty_like(k, at::MemoryFormat::Contiguous);
  at::Tensor dv = at::empty_like(v, at::MemoryFormat::Contiguous);
  if (p.q_len == 0) {
    dk.zero_();
    dv.zero_();
    return {dq, dk, dv};
  }
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = const_cast<void*>(out.data_ptr());
  p.lse = const_cast<float*>(lse.data_ptr<float>());
  p.dout = dout.data_ptr();
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  p.q_stride = strides_of(q);
  p.k_stride = strides_of(k);
  p.v_stride = strides_of(v);
  p.o_stride = strides_of(out);
  p.do_stride = strides_of(dout);
  p.dq_stride = strides_of(dq);
  p.dk_stride = strides_of(dk);
  p.dv_stride = strides_of(dv);
  check_status(attention_backward_cpu(p, at::get_num_threads()), "attention_bwd");
  return {dq, dk, dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(nbp, CPU, m) {
  m.impl("attention_fwd", &attention_fwd_cpu);
  m.impl("attention_bwd", &attention_bwd_cpu);
}

}  // namespace nbp
