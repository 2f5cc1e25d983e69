"""Activation memory of one generator training step (``Generator.loss`` and its backward), by formula.

Each term is a tensor autograd keeps from the forward pass for the backward pass, read off the
model's code (generator.py, head_loss.py, the attention op's saved q, k, v, out and logsumexp),
in bytes per token (d model width, h MLP hidden width, c the matmul dtype's bytes):

block      two norms (``_norm``: their input, or fp32 copies of a bf16 input; the row statistics;
           the normalised x; the matmul's input), q/k/v (one matmul output, 3d), the rotated q and
           k (llama), the attention output d and its logsumexp per head (fp32), the output
           projection's input d, and the MLP (SwiGLU: up output 2h, silu h, product h; GELU: up
           output h, gelu h). The block's input is the previous block's output: counted once.
head       the final norm's tensors, the loss's input h and its logsumexp per row.

With activation checkpointing a block keeps only its input and the backward pass recomputes one
block at a time. The step's peak is the largest of three moments:

forward head        everything saved + one chunk of the head's logits (``linear_cross_entropy``)
backward head       everything saved + the head's backward: grad of h, the fp32 grad of the head
                    weight, a chunk of softmax probabilities with their gradient
backward of a block the saved tensors left + the gradient of the block's output + the recomputed
                    block (checkpointing) + the MLP's backward gradients

Under DDP with bf16, autocast keeps a bf16 copy of every block weight until the backward pass uses
it (until the forward pass ends, with checkpointing): a term that does not grow with the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .flow import Flow

FP32 = 4


@dataclass(frozen=True)
class GeneratorShape:
    """The sizes the formula needs, read from a (meta) Generator."""

    layers: int
    tokens: int  # tokens through the blocks per clip: prefix + video
    video_tokens: int  # tokens in the loss per clip
    d_model: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int  # MLP hidden width (SwiGLU: per branch)
    vocab: int
    llama: bool  # RMSNorm, SwiGLU, rotary; else LayerNorm, GELU, learned positions
    dropout: bool
    block_weights: int  # elements of the matmul weights of one block

    @classmethod
    def from_model(cls, model: nn.Module) -> "GeneratorShape":
        cfg = model.config
        block = model.blocks[0]
        weights = sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Linear))
        return cls(layers=cfg.n_layer, tokens=cfg.max_len, video_tokens=cfg.video_len, d_model=cfg.d_model,
                   heads=cfg.n_head, kv_heads=cfg.n_kv_head, head_dim=cfg.head_dim, hidden=block.mlp.down.in_features,
                   vocab=cfg.vocab_size, llama=cfg.style == "llama", dropout=cfg.dropout > 0, block_weights=weights)


def _norm_copies_input(s: GeneratorShape, f: Flow) -> bool:
    """Whether a norm saves an fp32 copy of a bf16 input instead of the input itself (RMSNorm's
    x.float(); LayerNorm under autocast): then no one keeps the residual stream (without checkpointing)."""
    return f.param != FP32 and (s.llama or f.autocast)


def _norm(s: GeneratorShape, f: Flow, feeds_matmul: bool) -> int:
    """Bytes per token a norm saves: its input, or two fp32 copies of it (RMSNorm calls x.float()
    twice) or one (LayerNorm); rsqrt per row (RMSNorm) or mean and rstd (LayerNorm); RMSNorm's
    normalised x in the input's dtype; before a matmul, its output in the matmul's dtype."""
    d = s.d_model
    copies = _norm_copies_input(s, f)
    x = (2 if s.llama else 1) * FP32 * d if copies else f.param * d
    own = FP32 + f.param * d if s.llama else 2 * FP32
    return x + own + (f.compute * d if feeds_matmul else 0)


def head_input_bytes(s: GeneratorShape, f: Flow) -> int:
    """dtype of the final norm's output h: LayerNorm runs in fp32 under autocast; RMSNorm multiplies
    by its weight, in the parameters' dtype."""
    return FP32 if (not s.llama and f.autocast) else f.param


def block_internal(s: GeneratorShape, f: Flow) -> int:
    """Bytes per token one block saves, its input included (the output is the next one's input)."""
    c, d = f.compute, s.d_model
    qkv = c * (s.heads + 2 * s.kv_heads) * s.head_dim
    rope = c * (s.heads + s.kv_heads) * s.head_dim if s.llama else 0
    attn = qkv + rope + c * s.heads * s.head_dim + FP32 * s.heads + c * d  # q/k/v, rotated q/k, out, lse, proj input
    mlp = c * s.hidden * (4 if s.llama else 2)
    drop = 2 * d if s.dropout else 0  # one bool mask per residual branch
    return _norm(s, f, True) + attn + _norm(s, f, True) + mlp + drop


def weight_copies(s: GeneratorShape, f: Flow) -> int:
    """Bytes of the bf16 copies autocast makes of one block's fp32 matmul weights (DDP with bf16):
    saved for the backward, and cached by autocast until the forward pass ends."""
    return 2 * s.block_weights if f.casts_weights else 0


def rope_copies(s: GeneratorShape, f: Flow) -> int:
    """Bytes of one block's bf16 casts of the rotary tables (cos and sin, for q and for k), shared by
    the batch."""
    return 4 * s.tokens * (s.head_dim // 2) * f.compute if (s.llama and f.compute != FP32) else 0


def chunk_rows(vocab: int, chunk_elements: int, min_rows: int) -> int:
    """Rows of logits ``linear_cross_entropy`` computes at once (head_loss.chunk_rows)."""
    return max(min_rows, chunk_elements // max(vocab, 1))


def _chunk_pairs(rows: int, chunk: int) -> list[tuple[int, int]]:
    """(rows of the previous chunk, rows of this one) for each kind of chunk of the loss's loop: the
    previous chunk's tensors are still bound to the loop's variables while the next is computed."""
    pairs = [(0, min(rows, chunk))]
    if rows >= 2 * chunk:
        pairs.append((chunk, chunk))
    if rows > chunk and rows % chunk:
        pairs.append((chunk, rows % chunk))
    return pairs


def head_forward(s: GeneratorShape, f: Flow, rows: int, chunk: int) -> int:
    """Transient bytes of the loss's forward, per chunk: the matmul's logits (with the previous
    chunk's fp32 logits, and the bf16 copies autocast makes of an fp32 head weight and of h), their
    fp32 cast, or fp32 logits and logsumexp's temporary of their size."""
    v, d, c = s.vocab, s.d_model, f.compute
    casts = c * v * d if f.casts_weights else 0
    peak = 0
    for prev, cur in _chunk_pairs(rows, chunk):
        h_cast = c * cur * d if head_input_bytes(s, f) != c else 0
        matmul = FP32 * prev * v + c * cur * v + casts + h_cast
        peak = max(peak, matmul, (c + FP32) * cur * v if c != FP32 else 0, 2 * FP32 * cur * v)
    return peak


def head_backward(s: GeneratorShape, f: Flow, rows: int, chunk: int) -> int:
    """Transient bytes of the loss's backward: grad of h (and h) in the matmul dtype, the head weight
    in the matmul dtype, the fp32 grad of the weight, and per chunk the softmax (two fp32
    temporaries while it is made, the previous chunk's probabilities and their cast still held), the
    weight gradient's matmul output and its fp32 cast, and at the end the casts of both gradients."""
    v, d, c = s.vocab, s.d_model, f.compute
    h = head_input_bytes(s, f)
    fixed = c * rows * d + (c * rows * d if h != c else 0) + (c * v * d if f.param != c else 0) + FP32 * v * d

    def kept(r: int) -> int:  # probabilities and their cast to the matmul dtype
        return (FP32 + (c if c != FP32 else 0)) * r * v

    pairs = _chunk_pairs(rows, chunk)
    softmax = max(kept(prev) + 2 * FP32 * cur * v for prev, cur in pairs)
    grad_w = max(kept(cur) for _, cur in pairs) + ((c + FP32) * v * d if c != FP32 else 0)
    end = kept(pairs[-1][1]) + (f.param * v * d if f.param != FP32 else 0) + (h * rows * d if h != c else 0)
    return fixed + max(softmax, grad_w, end)


def mlp_backward(s: GeneratorShape, f: Flow, tokens: int) -> int:
    """Bytes the MLP's backward adds at its largest over the block's saved tensors: the down
    projection's input and weight gradients; then SwiGLU: the hidden gradient and the two it splits
    into, less the product the down projection released; GELU: the gradient after GELU, less the
    GELU output released."""
    c, h = f.compute, s.hidden
    down = c * h * tokens + c * h * s.d_model
    return max(down, c * h * tokens * (2 if s.llama else 1))


def activation_bytes(s: GeneratorShape, f: Flow, batch: int, checkpointing: bool, chunk_elements: int,
                     min_chunk_rows: int = 256) -> int:
    """Peak bytes of activations and backward temporaries of a step on ``batch`` clips."""
    n, nv, d, L = s.tokens * batch, s.video_tokens * batch, s.d_model, s.layers
    hb = head_input_bytes(s, f)
    io = f.param * d * n  # the residual stream at one point: a block's input or output
    stream = 0 if _norm_copies_input(s, f) else io  # the part of a norm's tensors that is its input
    final = _norm(s, f, False) * n + (hb * d + FP32) * nv  # final norm (with its input), h, the loss's lse
    block = block_internal(s, f) * n + rope_copies(s, f) + weight_copies(s, f)  # with its input
    if checkpointing:  # the checkpoints keep each block's input; one block at a time is recomputed
        saved = L * io + final
        held = L * weight_copies(s, f)  # autocast's cache, until the forward pass ends
        in_backward = L * io + block - stream
    else:
        saved = L * block + final
        held = 0
        in_backward = L * block
    chunk = chunk_rows(s.vocab, chunk_elements, min_chunk_rows)
    forward = saved + held + head_forward(s, f, nv, chunk) + hb * d * n  # h's full-length original is alive too
    backward_head = saved + head_backward(s, f, nv, chunk)
    backward_block = in_backward + io + mlp_backward(s, f, n)  # + the gradient of the block's output
    return int(max(forward, backward_head, backward_block))
