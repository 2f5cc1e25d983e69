// Block-causal attention backward on CUDA, bf16 storage: one instantiation per file so builds parallelise.
#include "attention_cuda.cuh"

namespace nbp {
namespace cuda_attn {

Status backward_bf16(const AttentionParams& p, void* workspace, cudaStream_t stream) {
  return launch_backward<__nv_bfloat16>(p, workspace, stream);
}

}  // namespace cuda_attn
}  // namespace nbp
