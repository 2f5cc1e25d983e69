// Block-causal attention forward on CUDA, fp32 storage: one instantiation per file so builds parallelise.
#include "attention_cuda.cuh"

namespace nbp {
namespace cuda_attn {

Status forward_fp32(const AttentionParams& p, cudaStream_t stream) { return launch_forward<float>(p, stream); }

}  // namespace cuda_attn
}  // namespace nbp
