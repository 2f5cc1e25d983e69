"""Generation with a static KV cache: ``prefill``, ``decode_block``, ``generate``."""

from ..models.kv_cache import KVCache, make_caches
from .loop import decode_block, generate, generate_tokens, prefill
from .sampling_config import SamplingConfig

__all__ = ["KVCache", "make_caches", "SamplingConfig", "prefill", "decode_block", "generate", "generate_tokens"]
