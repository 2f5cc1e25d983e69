"""What the device can do in hardware, for the choices of precision in training and generation."""

from __future__ import annotations

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matrix products in hardware (CUDA: compute capability 8.0+;
    CPU: AVX512-BF16 or AMX, as oneDNN reports them)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def require_native_bf16(device: torch.device) -> None:
    """Raise the ``--precision bf16`` error, naming ``device``, where it lacks bf16 in hardware."""
    if not native_bf16(device):
        raise ValueError(f"--precision bf16 needs bf16 instructions (AVX512-BF16 or AMX on a CPU, compute "
                         f"capability 8.0+ on a GPU), which {device} lacks; use --precision fp32")
