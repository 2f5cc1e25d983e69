"""Generation with a static KV cache: ``prefill``, ``decode_block``, ``generate``."""

from .kv_cache import KVCache, make_caches
from .loop import SamplingConfig, decode_block, generate, generate_tokens, prefill

__all__ = ["KVCache", "make_caches", "SamplingConfig", "prefill", "decode_block", "generate", "generate_tokens"]
