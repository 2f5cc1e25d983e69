"""Flow: the dtypes a training step's tensors take under each precision and data-parallel strategy."""

from __future__ import annotations

from dataclasses import dataclass

PRECISIONS = ("bf16", "fp32")
FP32_BYTES = 4
STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class Flow:
    """Bytes per element of the tensors of one step.

    ``param``: the parameters the forward pass reads (FSDP: the gathered, unsharded ones), which is
    also the dtype of the embeddings and so of the residual stream. ``compute``: matmul and
    convolution inputs and outputs (bf16 under autocast). ``autocast``: the forward runs under bf16
    autocast, whose CUDA rules also run norms and losses in fp32.
    """

    param: int
    compute: int
    autocast: bool

    @property
    def casts_weights(self) -> bool:
        """fp32 weights used by bf16 matmuls: autocast makes (and keeps) a bf16 copy of each."""
        return self.autocast and self.param != self.compute


def flow_for(strategy: str, precision: str) -> Flow:
    """bf16 under DDP: fp32 parameters and bf16 autocast; under FSDP: MixedPrecisionPolicy(param_dtype=bf16,
    reduce_dtype=fp32) gathers bf16 parameters, and autocast still runs norms and losses in fp32."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return Flow(param=FP32_BYTES, compute=FP32_BYTES, autocast=False)
    return Flow(param=FP32_BYTES if strategy == "ddp" else 2, compute=2, autocast=True)
