"""Export wrappers of the generator: the prefill graph and the block-step graph (and, for the hybrid
start, the token-step graph: the same step for one token, which generates block 0 token by token).

Both wrap an *adapter*, an object that runs one generator with explicit key/value tensors:

    adapter.prefill(prefix)  prefix (R, P) int64
        -> logits (R, S, V) of the first video block, keys and values: lists over layers of
           (R, Hkv, P + S, D): the prefix and the start block (S = L), or the hybrid start's one
           token (S = 1, logits of block 0's first token)
    adapter.step(tokens, position, past_k, past_v)
        tokens (R, n) int64 (the block just sampled, n = L; or one token of block 0 of a hybrid
        start, n = 1, which sees the cache before it and itself), position (1,) int64 (absolute position of
        its first token), past_k / past_v lists of (R, Hkv, N, D) caches whose first ``position``
        entries are valid
        -> logits (R, L, V) of the next block, the block's keys and values (R, Hkv, L, D) per layer

and whose ``spec`` (a GeneratorSpec) gives the sizes. The step graph has fully static shapes; the
caches go in and only the new block's keys and values come out, which the runtime writes at
``position`` itself, so the caches stay at fixed addresses. The step's attention is
``nbp_ext.models.kv_cache.cached_block_attention``: every cached key before ``position`` belongs
to an earlier block (or the prefix) and is visible, and the block sees itself bidirectionally.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class GeneratorSpec:
    vocab_size: int
    num_layers: int
    kv_heads: int
    head_dim: int
    latent_grid: tuple[int, int, int]
    block_shape: tuple[int, int, int]
    prefix_kind: str          # "class", "frames" or "none" (unconditional: P = 0)
    prefix_len: int           # P
    num_classes: int = 0      # class prefix
    null_class: int = -1      # class prefix: the unconditional stream's id (-1: none)
    context_frames: int = 0   # frames prefix: latent frames given
    start: str = "learned"    # "learned" start block, or "hybrid": block 0 token by token

    @property
    def block_len(self) -> int:
        return math.prod(self.block_shape)

    @property
    def start_len(self) -> int:
        """Positions after the prefix that the prefill covers: the learned start block (L), or the
        hybrid start's one start token, after which block 0's tokens go through the token step."""
        return 1 if self.start == "hybrid" else self.block_len

    @property
    def prefill_len(self) -> int:
        return self.prefix_len + self.start_len

    @property
    def num_blocks(self) -> int:
        """Video blocks generated per clip."""
        t, h, w = self.latent_grid
        return (t - self.context_frames) * h * w // self.block_len

    @property
    def num_steps(self) -> int:
        """Forward passes per clip (the prefill included): one per block, and L - 1 more for a hybrid start."""
        return self.num_blocks + (self.block_len - 1 if self.start == "hybrid" else 0)

    @property
    def first_block_position(self) -> int:
        """Absolute position of the block fed to step 1 (after the prefix and the start block)."""
        return self.prefix_len + self.block_len

    @property
    def max_cache_len(self) -> int:
        """Positions the step graph's caches hold: the prefix, the start block and every block fed to a
        step (the runtime appends the last step's block too, so the loop has no special case)."""
        return self.first_block_position + (self.num_blocks - 1) * self.block_len


class PrefillGraph(nn.Module):
    """prefix (R, P) -> logits and caches. With P = 0 (unconditional) the graph has no input at all:
    ``rows`` fixes its batch."""

    def __init__(self, adapter, rows: int | None = None):
        super().__init__()
        self.adapter = adapter
        self.rows = rows

    def forward(self, prefix: torch.Tensor | None = None):
        if prefix is None:
            prefix = torch.zeros(self.rows, 0, dtype=torch.int64)
        logits, keys, values = self.adapter.prefill(prefix)
        return (logits.float(), *[t for kv in zip(keys, values) for t in kv])


class StepGraph(nn.Module):
    def __init__(self, adapter):
        super().__init__()
        self.adapter = adapter

    def forward(self, tokens: torch.Tensor, position: torch.Tensor, *caches: torch.Tensor):
        past_k, past_v = list(caches[0::2]), list(caches[1::2])
        logits, keys, values = self.adapter.step(tokens, position, past_k, past_v)
        return (logits.float(), *[t for kv in zip(keys, values) for t in kv])


def prefill_io(spec: GeneratorSpec, rows: int, kv_dtype: str = "float32"):
    """(input names, output names, manifest entries of inputs and outputs); keys and values in
    ``kv_dtype`` (the graph's precision), logits fp32."""
    from export.manifest import tensor_entry

    F, L, V = spec.prefill_len, spec.start_len, spec.vocab_size  # logits of block 0 (hybrid: of its first token)
    kv = [rows, spec.kv_heads, F, spec.head_dim]
    outs = ["logits"] + [f"{kind}_{i}" for i in range(spec.num_layers) for kind in ("key", "value")]
    if spec.prefix_len == 0:  # unconditional: no input
        return [], outs, [], [tensor_entry("logits", "float32", [rows, L, V])] + [tensor_entry(n, kv_dtype, kv) for n in outs[1:]]
    entries_in = [tensor_entry("prefix", "int64", [rows, spec.prefix_len])]
    entries_out = [tensor_entry("logits", "float32", [rows, L, V])] + [tensor_entry(n, kv_dtype, kv) for n in outs[1:]]
    return ["prefix"], outs, entries_in, entries_out


def step_io(spec: GeneratorSpec, rows: int, tokens: int | None = None, kv_dtype: str = "float32"):
    """As prefill_io, for a step of ``tokens`` positions (default: a block; 1: the hybrid start's token step)."""
    from export.manifest import tensor_entry

    N, L, V = spec.max_cache_len, tokens or spec.block_len, spec.vocab_size
    past = [f"past_{kind}_{i}" for i in range(spec.num_layers) for kind in ("key", "value")]
    ins = ["tokens", "position"] + past
    outs = ["logits"] + [f"{kind}_{i}" for i in range(spec.num_layers) for kind in ("key", "value")]
    entries_in = [tensor_entry("tokens", "int64", [rows, L]), tensor_entry("position", "int64", [1])]
    entries_in += [tensor_entry(n, kv_dtype, [rows, spec.kv_heads, N, spec.head_dim]) for n in past]
    entries_out = [tensor_entry("logits", "float32", [rows, L, V])]
    entries_out += [tensor_entry(n, kv_dtype, [rows, spec.kv_heads, L, spec.head_dim]) for n in outs[1:]]
    return ins, outs, entries_in, entries_out
