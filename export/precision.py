"""The precision an export folder's graphs carry, and so its TensorRT engines (strongly typed: the
engine computes in the types the graph states, and the builder sets no precision flags).

fp32 graphs are fp32 throughout. fp16 and bf16 graphs hold the generator's and the tokenizer
decoder's weights, and compute their activations, in that type, except where low precision is not
safe; these stay fp32:

- softmax statistics of every attention (the scores' maximum, the exponentials and their sum, in
  export/onnx_attention.py and nbp_ext.models.kv_cache.cached_block_attention); the probabilities are
  rounded to the low type only to multiply the values;
- RMS statistics of the norms (the model's own RMSNorm computes them in fp32);
- the final projection to the vocabulary and the logits the sampler reads: the last hidden state
  and the head weight are widened to fp32 for that matmul (Generator.logits_fp32), so a logit of 10 is not
  off by bf16's 0.04;
- graph inputs and outputs other than the KV caches: token ids and positions (int64), logits and
  decoded frames (fp32);
- the tokenizer encoder (frame prediction's context): it ends in rounding latents to codes, where a
  low-precision latent near a level boundary flips the code; it runs once per clip;
- the tokenizer decoder of a bf16 export: ONNX's Conv takes bf16 only from opset 22 on, and the
  graphs are opset 18 (``DECODER_PRECISION``); an fp16 export's decoder is fp16.

The KV caches are inputs and outputs in the low type, which halves their memory.
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "fp16", "bf16")

TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# The tokenizer decoder's precision in an export of each precision (see above).
DECODER_PRECISION = {"fp32": "fp32", "fp16": "fp16", "bf16": "fp32"}

# Element type names of manifest.json (csrc/runtime/manifest.cpp reads them).
MANIFEST_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

# (atol, rtol) of ONNX Runtime against PyTorch in the same precision: an output passes when
# max |onnx - torch| <= atol + rtol * max |torch|. fp32 differs only by summation order; fp16 and
# bf16 also by where each library rounds intermediate results (a unit in the last place is 2^-11
# and 2^-8 of the value), which grows through the layers. bf16 graphs run in ONNX Runtime widened
# to fp32 (export/onnx_check.py), so their bound covers PyTorch's bf16 rounding of activations.
TOLERANCES = {"fp32": (1e-4, 1e-4), "fp16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)}


def check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision
