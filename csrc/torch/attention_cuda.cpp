// CUDA implementations of nbp::attention_fwd and nbp::attention_bwd, on the current torch stream.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "attention_params.h"

namespace nbp {
namespace {

std::tuple<at::Tensor, at::Tensor> attention_fwd_cuda_op(const at::Tensor& q_in, const at::Tensor& k_in,
                                                         const at::Tensor& v_in, int64_t block_size,
                                                         int64_t prefix_len, int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q_in, k_in, v_in, block_size, prefix_len, q_offset, scale);
  const c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  at::Tensor out = at::empty_like(q, at::MemoryFormat::Contiguous);
  at::Tensor lse = at::empty({p.batch, p.heads, p.q_len}, q.options().dtype(at::kFloat));
  if (p.q_len == 0) return {out, lse};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.out = out.data_ptr();
  p.lse = lse.data_ptr<float>();
  p.q_stride = strides_of(q);
  p.k_stride = strides_of(k);
  p.v_stride = strides_of(v);
  p.o_stride = strides_of(out);
  check_status(attention_forward_cuda(p, at::cuda::getCurrentCUDAStream().stream()), "attention_fwd");
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_bwd_cuda_op(
    const at::Tensor& dout_in, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
    const at::Tensor& out_in, const at::Tensor& lse_in, int64_t block_size, int64_t prefix_len,
    int64_t q_offset, double scale) {
  AttentionParams p = make_attention_params(q_in, k_in, v_in, block_size, prefix_len, q_offset, scale);
  NBP_CHECK(dout_in.sizes() == q_in.sizes() && out_in.sizes() == q_in.sizes(),
            "dout and out must have the shape of q ", q_in.sizes());
  NBP_CHECK(lse_in.scalar_type() == at::kFloat && lse_in.dim() == 3, "lse must be float32 (B, H, Nq)");
  const c10::cuda::CUDAGuard guard(q_in.device());
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
  const int64_t ws_bytes = attention_backward_cuda_workspace_bytes(p);
  at::Tensor ws = at::empty({std::max<int64_t>(ws_bytes, 1)}, q.options().dtype(at::kByte));
  check_status(attention_backward_cuda(p, ws.data_ptr(), at::cuda::getCurrentCUDAStream().stream()),
               "attention_bwd");
  return {dq, dk, dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(nbp, CUDA, m) {
  m.impl("attention_fwd", &attention_fwd_cuda_op);
  m.impl("attention_bwd", &attention_bwd_cuda_op);
}

}  // namespace nbp
