"""``--compile``: the training step's loss through ``torch.compile``, with eager as the fallback.

Inductor fuses the small element-wise operations of a tiny model (norms, rotary, SwiGLU, residual
adds) that otherwise each make a pass over memory: on 2 AVX2 cores the tiny generator's training
step is 1.16x faster in fp32 (``bench/train_step.py``, docs/results/training.md), after a compilation of
36 s in its first step; in bf16 on 2 AVX512-BF16 cores, 1.05x. Where compilation fails (no C++ compiler for inductor, an unsupported torch), the
run says why once and trains eagerly instead of stopping.
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
    failed = False

    def call(*args, **kwargs):
        nonlocal failed
        if not failed:
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # compilation errors come in many types (dynamo, inductor, the C++ build)
                first_line = (str(e).splitlines() or [""])[0][:200]
                warn(f"--compile: torch.compile failed ({type(e).__name__}: {first_line}); training without it")
                failed = True
        return fn(*args, **kwargs)

    return call
