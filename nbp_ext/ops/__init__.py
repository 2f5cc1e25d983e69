"""The compiled ops (torch.ops.nbp.*) with their Python wrappers and pure-PyTorch references."""

from nbp_ext import _ext
from nbp_ext.ops.attention import (
    block_causal_attention,
    block_causal_attention_ref,
    block_causal_mask,
    not_supported_reasons,
)
from nbp_ext.ops.sampling import row_seeds, sample_block, sample_block_ref

__all__ = [
    "block_causal_attention",
    "block_causal_attention_ref",
    "block_causal_mask",
    "not_supported_reasons",
    "row_seeds",
    "sample_block",
    "sample_block_ref",
]

try:
    _ext.load()
except _ext.ExtensionNotBuiltError as _err:  # the references stay usable; the ops raise on use
    _LOAD_ERROR = _err
else:
    _LOAD_ERROR = None
    from nbp_ext.ops import attention as _attention, sampling as _sampling

    _attention._register()
    _sampling._register()
