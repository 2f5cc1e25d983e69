// Compiled instead of the .cu files in builds without CUDA, so the runtime and the bindings link
// the same symbols either way and learn at run time that the CUDA path is absent.
#include "attention.h"
#include "sampling.h"

namespace nbp {

Status attention_forward_cuda(const AttentionParams&, void*) { return Status::kUnsupported; }
int64_t attention_backward_cuda_workspace_bytes(const AttentionParams&) { return 0; }
Status attention_backward_cuda(const AttentionParams&, void*, void*) { return Status::kUnsupported; }
int64_t sample_block_cuda_workspace_bytes(const SamplingParams&) { return 0; }
Status sample_block_cuda(const SamplingParams&, void*, int32_t*, void*) { return Status::kUnsupported; }
bool cuda_kernels_built() { return false; }

}  // namespace nbp
