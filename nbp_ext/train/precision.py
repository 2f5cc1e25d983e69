"""Mixed precision of the training stages: ``--precision auto|fp32|bf16``.

``bf16`` runs the forward pass under ``torch.autocast`` in bfloat16 and keeps fp32 weights,
optimizer state and gradients. ``auto`` picks it on a CUDA GPU that supports it and, for the stages
that allow it, on a CPU whose oneDNN reports bf16 instructions (AVX512-BF16 or AMX); elsewhere fp32.
The generator allows it (same held-out loss, 1.4x the tokens per second on a 2-core AVX512-BF16
CPU); the tokenizer does not (its patch tokenizer lost 0.7 dB PSNR in bf16 on that CPU). Held-out
losses are always computed in fp32.
"""

from __future__ import annotations

import torch

from ..hardware import native_bf16, require_native_bf16

PRECISIONS = ("auto", "fp32", "bf16")
__all__ = ["PRECISIONS", "autocast", "native_bf16", "resolve_precision"]


def resolve_precision(precision: str, device: torch.device, cpu_bf16: bool = True) -> str:
    """``auto`` -> ``bf16`` or ``fp32`` for this device (on a CPU only if ``cpu_bf16``); an explicit
    choice is checked."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        allowed = cpu_bf16 or device.type != "cpu"
        return "bf16" if allowed and native_bf16(device) else "fp32"
    if precision == "bf16":
        require_native_bf16(device)
    return precision


def autocast(precision: str, device: torch.device) -> torch.autocast:
    """The autocast context of a resolved precision."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
