// Block-causal attention backward on CUDA, fp32 storage: one instantiation per file so builds parallelise.
#include "attention_cuda.cuh"

namespace nbp {
namespace cuda_attn {

Status backward_fp32(const AttentionParams& p, void* workspace, cudaStream_t stream) {
  return launch_backward<float>(p, workspace, stream);
}

}  // namespace cuda_attn
}  // namespace nbp
