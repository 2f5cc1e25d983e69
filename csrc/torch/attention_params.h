// Tensor -> AttentionParams, shared by the CPU and CUDA bindings. Every check names its argument.
#pragma once

#include <cmath>

#include "../kernels/attention.h"
#include "checks.h"

namespace nbp {

inline Strides4 strides_of(const Tensor& t) { return Strides4{t.stride(0), t.stride(1), t.stride(2)}; }

inline AttentionParams make_attention_params(const Tensor& q, const Tensor& k, const Tensor& v,
                                             int64_t block_size, int64_t prefix_len, int64_t q_offset,
                                             double scale) {
  check_rank(q, 4, "q", "(B, H, Nq, D)");
  check_rank(k, 4, "k", "(B, Hkv, Nk, D)");
  check_rank(v, 4, "v", "(B, Hkv, Nk, D)");
  check_same_device(q, "q", k, "k");
  check_same_device(q, "q", v, "v");
  const DType dt = to_kernel_dtype(q, "q");
  NBP_CHECK_TYPE(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
                 "q, k and v must share one dtype, got ", q.scalar_type(), ", ", k.scalar_type(), ", ",
                 v.scalar_type());
  NBP_CHECK(same_shape(k, v), "k and v must have the same shape, got ", shape_of(k), " and ", shape_of(v));
  NBP_CHECK(q.size(0) == k.size(0), "q and k must have the same batch size, got ", q.size(0), " and ",
            k.size(0));
  NBP_CHECK(q.size(3) == k.size(3), "q and k must have the same head dim, got ", q.size(3), " and ", k.size(3));
  NBP_CHECK(q.size(3) >= 1 && q.size(3) <= kMaxHeadDim, "head dim (q.shape[-1]) must be in [1, ", kMaxHeadDim,
            "], got ", q.size(3));
  NBP_CHECK(k.size(1) >= 1 && q.size(1) % k.size(1) == 0,
            "the number of query heads (q.shape[1] = ", q.size(1),
            ") must be a multiple of the number of key/value heads (k.shape[1] = ", k.size(1), ")");
  NBP_CHECK(k.size(2) >= 1, "k and v must hold at least one key, got Nk = ", k.size(2));
  NBP_CHECK(block_size >= 1, "block_size must be >= 1, got ", block_size);
  NBP_CHECK(prefix_len >= 0, "prefix_len must be >= 0, got ", prefix_len);
  NBP_CHECK(q_offset >= 0, "q_offset must be >= 0, got ", q_offset);
  NBP_CHECK(std::isfinite(scale), "scale must be finite, got ", scale);

  AttentionParams p;
  p.batch = q.size(0);
  p.heads = q.size(1);
  p.kv_heads = k.size(1);
  p.q_len = q.size(2);
  p.k_len = k.size(2);
  p.head_dim = q.size(3);
  p.block_size = block_size;
  p.prefix_len = prefix_len;
  p.q_offset = q_offset;
  p.scale = static_cast<float>(scale);
  p.dtype = dt;
  return p;
}

// The tensors of one call (kept alive while the kernel runs); prepare_* fill p's pointers and strides.
struct AttentionTensors {
  Tensor q, k, v, out, lse, dout, dq, dk, dv;
};

inline AttentionTensors prepare_forward(AttentionParams& p, const Tensor& q_in, const Tensor& k_in,
                                        const Tensor& v_in) {
  AttentionTensors t;
  t.q = rows_contiguous(q_in);
  t.k = rows_contiguous(k_in);
  t.v = rows_contiguous(v_in);
  t.out = empty_contiguous_like(t.q);
  t.lse = new_contiguous(t.q, {p.batch, p.heads, p.q_len}, ScalarType::Float);
  p.q = t.q.data_ptr();
  p.k = t.k.data_ptr();
  p.v = t.v.data_ptr();
  p.out = t.out.data_ptr();
  p.lse = static_cast<float*>(t.lse.data_ptr());
  p.q_stride = strides_of(t.q);
  p.k_stride = strides_of(t.k);
  p.v_stride = strides_of(t.v);
  p.o_stride = strides_of(t.out);
  return t;
}

inline AttentionTensors prepare_backward(AttentionParams& p, const Tensor& dout_in, const Tensor& q_in,
                                         const Tensor& k_in, const Tensor& v_in, const Tensor& out_in,
                                         const Tensor& lse_in) {
  NBP_CHECK(same_shape(dout_in, q_in) && same_shape(out_in, q_in), "dout and out must have the shape of q ",
            shape_of(q_in), ", got ", shape_of(dout_in), " and ", shape_of(out_in));
  NBP_CHECK(dout_in.scalar_type() == q_in.scalar_type() && out_in.scalar_type() == q_in.scalar_type(),
            "dout and out must have the dtype of q (", q_in.scalar_type(), ")");
  NBP_CHECK(lse_in.scalar_type() == ScalarType::Float && lse_in.dim() == 3 && lse_in.size(0) == p.batch &&
                lse_in.size(1) == p.heads && lse_in.size(2) == p.q_len,
            "lse must be float32 of shape (B, H, Nq) = (", p.batch, ", ", p.heads, ", ", p.q_len, "), got ",
            lse_in.scalar_type(), " ", shape_of(lse_in));
  check_same_device(q_in, "q", dout_in, "dout");
  AttentionTensors t;
  t.q = rows_contiguous(q_in);
  t.k = rows_contiguous(k_in);
  t.v = rows_contiguous(v_in);
  t.dout = rows_contiguous(dout_in);
  t.out = rows_contiguous(out_in);
  t.lse = torch::stable::contiguous(lse_in);
  t.dq = empty_contiguous_like(t.q);
  t.dk = empty_contiguous_like(t.k);
  t.dv = empty_contiguous_like(t.v);
  p.q = t.q.data_ptr();
  p.k = t.k.data_ptr();
  p.v = t.v.data_ptr();
  p.out = t.out.data_ptr();
  p.lse = static_cast<float*>(t.lse.data_ptr());
  p.dout = t.dout.data_ptr();
  p.dq = t.dq.data_ptr();
  p.dk = t.dk.data_ptr();
  p.dv = t.dv.data_ptr();
  p.q_stride = strides_of(t.q);
  p.k_stride = strides_of(t.k);
  p.v_stride = strides_of(t.v);
  p.o_stride = strides_of(t.out);
  p.do_stride = strides_of(t.dout);
  p.dq_stride = strides_of(t.dq);
  p.dk_stride = strides_of(t.dk);
  p.dv_stride = strides_of(t.dv);
  if (p.q_len == 0) {  // no queries: nothing flows back to the keys
    torch::stable::zero_(t.dk);
    torch::stable::zero_(t.dv);
  }
  return t;
}

}  // namespace nbp
