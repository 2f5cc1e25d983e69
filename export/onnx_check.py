"""Checks of an exported graph: ``onnx.checker``, then ONNX Runtime (CPU) against PyTorch on the
same inputs. A graph passes when every output satisfies

    max |onnx - torch| <= atol + rtol * max |torch|

with ``TOLERANCE`` below (fp32 graphs; the two libraries differ only by summation order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (atol, rtol) of the ONNX Runtime vs PyTorch comparison.
TOLERANCE = (1e-4, 1e-4)


class ParityError(AssertionError):
    pass


def check_model(path: Path) -> None:
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def ort_session(path: Path, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


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
