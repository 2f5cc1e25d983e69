"""Checks of an exported graph: ``onnx.checker``, then ONNX Runtime (CPU) against PyTorch on the
same inputs. A graph passes when every output satisfies

    max |onnx - torch| <= atol + rtol * max |torch|

with the (atol, rtol) of the graph's precision (export/precision.py; ``TOLERANCE`` is fp32's).

ONNX Runtime's CPU provider has no bf16 arithmetic kernels (MatMul, Add, Exp, Conv... are fp32 and
fp16 only), so a graph with bf16 tensors runs here *widened*: its bf16 weights and constants become
fp32 (exactly), its casts to bf16 casts to fp32. That checks the graph's structure and weights
against PyTorch in bf16, not bf16 rounding itself, which only TensorRT (or a GPU provider) runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.precision import TOLERANCES

# (atol, rtol) of the ONNX Runtime vs PyTorch comparison of fp32 graphs.
TOLERANCE = TOLERANCES["fp32"]


class ParityError(AssertionError):
    pass


def check_model(path: Path) -> None:
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def has_bf16(model) -> bool:
    from onnx import TensorProto

    values = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    return (any(t.data_type == TensorProto.BFLOAT16 for t in model.graph.initializer)
            or any(v.type.tensor_type.elem_type == TensorProto.BFLOAT16 for v in values))


def widened_bf16(model):
    """A copy of ``model`` with every bf16 tensor, cast and declared type made fp32 (see above)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    bf16, fp32 = TensorProto.BFLOAT16, TensorProto.FLOAT

    def widen(t):
        if t.data_type == bf16:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))

    def walk(graph):
        for t in graph.initializer:
            widen(t)
        for v in list(graph.input) + list(graph.output) + list(graph.value_info):
            if v.type.tensor_type.elem_type == bf16:
                v.type.tensor_type.elem_type = fp32
        for node in graph.node:
            for a in node.attribute:
                if node.op_type == "Cast" and a.name == "to" and a.i == bf16:
                    a.i = fp32
                if a.type == onnx.AttributeProto.TENSOR:
                    widen(a.t)
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)

    walk(model.graph)
    return model


def ort_session(path: Path, threads: int = 0):
    """A CPU session of the graph at ``path``; a graph with bf16 tensors is widened first."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    model = onnx.load(str(path))
    source = widened_bf16(model).SerializeToString() if has_bf16(model) else str(path)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


def to_numpy(t) -> np.ndarray:
    """A torch tensor as ONNX Runtime takes it: bf16 (which numpy lacks) widened to fp32, as above."""
    import torch

    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def compare(name: str, got: dict[str, np.ndarray], want: dict[str, np.ndarray], tol=TOLERANCE) -> float:
    """Largest |difference| over the outputs; raises ParityError above the tolerance."""
    atol, rtol = tol
    worst = 0.0
    for key, ref in want.items():
        out = got[key]
        if out.shape != ref.shape:
            raise ParityError(f"{name}: output {key} has shape {out.shape}, PyTorch gives {ref.shape}")
        if ref.dtype.kind in "iu":
            if not np.array_equal(out, ref):
                raise ParityError(f"{name}: integer output {key} differs from PyTorch in {(out != ref).sum()} places")
            continue
        diff = float(np.max(np.abs(out.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
        bound = atol + rtol * float(np.max(np.abs(ref))) if ref.size else atol
        if not diff <= bound:
            raise ParityError(f"{name}: output {key} differs from PyTorch by {diff:.3e} > {bound:.3e} (atol {atol}, rtol {rtol})")
        worst = max(worst, diff)
    return worst


def run_and_compare(path: Path, feeds: dict[str, np.ndarray], want: dict[str, np.ndarray], session=None,
                    tol=TOLERANCE) -> float:
    sess = session or ort_session(path)
    names = list(want)
    outs = sess.run(names, feeds)
    return compare(path.name, dict(zip(names, outs)), want, tol)
