"""ONNX translation of the block-causal attention op for the dynamo exporter.

``torch.ops.nbp.attention_fwd`` has no ONNX counterpart, so ``TRANSLATION_TABLE`` (passed as
``custom_translation_table`` to ``torch.onnx.export(..., dynamo=True)``) maps it to standard opset-18
ops: the block-causal mask from two ``Range``s, grouped key/value heads expanded to the query heads,
then a masked softmax(q k^T * scale) v, its statistics in fp32 whatever q's type (the probabilities
meet v in v's type). ``block_size``, ``prefix_len``, ``q_offset`` and ``scale`` are
constants of the traced call (they are Python ints in the model), so the mask is built from
shapes only and works for dynamic sequence lengths. The second output (log-sum-exp, used only by the
backward pass) is computed too, so the op's signature is kept.
"""

from __future__ import annotations

import torch
from onnxscript import opset18 as op


def attention_fwd(q, k, v, block_size: int, prefix_len: int, q_offset: int, scale: float):
    """q (B, H, Nq, D), k and v (B, Hkv, Nk, D) -> out (B, H, Nq, D), lse (B, H, Nq) float32."""
    zero = op.Constant(value_int=0)
    one = op.Constant(value_int=1)
    nq = op.Squeeze(op.Shape(q, start=2, end=3))
    nk_1d = op.Shape(k, start=2, end=3)
    prefix = op.Constant(value_int=prefix_len)
    blen = op.Constant(value_int=block_size)

    def block_of(pos):  # 0 inside the prefix, then 1 + (pos - P) // L
        return op.Where(op.Less(pos, prefix), zero, op.Add(one, op.Div(op.Sub(pos, prefix), blen)))

    qpos = op.Add(op.Range(zero, nq, one), op.Constant(value_int=q_offset))
    kpos = op.Range(zero, op.Squeeze(nk_1d), one)
    visible = op.LessOrEqual(
        op.Unsqueeze(block_of(kpos), op.Constant(value_ints=[0])),  # (1, Nk)
        op.Unsqueeze(block_of(qpos), op.Constant(value_ints=[1])),  # (Nq, 1)
    )  # (Nq, Nk)

    # Grouped heads: (B, Hkv, Nk, D) -> (B, Hkv, H / Hkv, Nk, D) -> (B, H, Nk, D).
    b = op.Shape(k, start=0, end=1)
    heads = op.Shape(q, start=1, end=2)
    kv_heads = op.Shape(k, start=1, end=2)
    d = op.Shape(k, start=3, end=4)
    group = op.Div(heads, kv_heads)

    def expand_heads(x):
        x = op.Expand(op.Unsqueeze(x, op.Constant(value_ints=[2])), op.Concat(b, kv_heads, group, nk_1d, d, axis=0))
        return op.Reshape(x, op.Concat(b, heads, nk_1d, d, axis=0))

    scores = op.Cast(op.MatMul(q, op.Transpose(expand_heads(k), perm=[0, 1, 3, 2])), to=1)  # (B, H, Nq, Nk) fp32
    scores = op.Mul(scores, op.Constant(value_float=scale))
    scores = op.Where(visible, scores, op.Constant(value_float=float("-inf")))
    axis = op.Constant(value_ints=[-1])
    mx = op.ReduceMax(scores, axis, keepdims=1)
    e = op.Exp(op.Sub(scores, mx))
    total = op.ReduceSum(e, axis, keepdims=1)
    out = op.MatMul(op.CastLike(op.Div(e, total), v), expand_heads(v))
    lse = op.Cast(op.Squeeze(op.Add(op.Log(total), mx), axis), to=1)
    return out, lse


def translation_table() -> dict:
    """``custom_translation_table`` for ``torch.onnx.export``; needs the compiled ops loaded."""
    import nbp_ext.ops  # noqa: F401  (registers torch.ops.nbp.*)

    return {torch.ops.nbp.attention_fwd.default: attention_fwd}
