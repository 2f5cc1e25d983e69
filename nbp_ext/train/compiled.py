"""``--compile``: the training step's loss through ``torch.compile``, with eager as the fallback.

Inductor fuses the small element-wise operations of a tiny model (norms, rotary, SwiGLU, residual
adds) that otherwise each make a pass over memory: on 2 AVX2 cores the tiny generator's training
step is 1.16x faster (``bench/train_step.py``, bench/RESULTS.md), after a compilation of 36 s in
its first step. Where compilation fails (no C++ compiler for inductor, an unsupported torch), the run says
why once and trains eagerly instead of stopping.
"""

from __future__ import annotations

from typing import Callable

import torch


def compiled_or_eager(fn: Callable, enabled: bool, warn: Callable[[str], None] = print) -> Callable:
    """``fn`` compiled when ``enabled``; a call whose compilation raises runs ``fn`` eagerly, as do
    all calls after it."""
    if not enabled:
        return fn
    compiled = torch.compile(fn)
    current = [compiled]

    def call(*args, **kwargs):
        if current[0] is fn:
            return fn(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except Exception as e:  # compilation errors come in many types (dynamo, inductor, the C++ build)
            warn(f"--compile: torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                 "training without it")
            current[0] = fn
            return fn(*args, **kwargs)

    return call
