// Schemas of the nbp ops, on PyTorch's stable ABI. Implementations are registered per backend (CPU
// here, CUDA in the CUDA bindings); fake tensors and autograd are registered from Python (nbp_ext/ops).
#include <torch/csrc/stable/library.h>

STABLE_TORCH_LIBRARY(nbp, m) {
  m.def(
      "attention_fwd(Tensor q, Tensor k, Tensor v, int block_size, int prefix_len, int q_offset, "
      "float scale) -> (Tensor out, Tensor lse)");
  m.def(
      "attention_bwd(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, int block_size, "
      "int prefix_len, int q_offset, float scale) -> (Tensor dq, Tensor dk, Tensor dv)");
  m.def(
      "sample_block(Tensor logits, Tensor seeds, int offset, float temperature, int top_k, float top_p, "
      "float guidance_scale, Tensor? uncond_logits) -> Tensor");
}
