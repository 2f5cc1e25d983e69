"""Parallel block sampling: the public op, its fake registration, and the float64 reference.

Every position of every row is drawn at once (csrc/kernels/sampling.h has the exact steps):
guidance u + s * (c - u), temperature (0 = greedy), top-k (ties at the cut kept), top-p (the fewest
largest probabilities reaching p, ties kept), then an inverse-CDF draw in vocabulary order with a
Philox uniform keyed by (row seed, offset, position) only. Row b uses seed + b when `seed` is an int.
"""

from __future__ import annotations

import torch

from nbp_ext import _ext
from nbp_ext.ops import philox

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_MAX_SEED = (1 << 63) - 1


def row_seeds(seed: int | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """Per-row int64 seeds (B,): seed + b for an int, the tensor itself (checked) otherwise."""
    if isinstance(seed, torch.Tensor):
        if seed.dtype != torch.int64 or seed.dim() != 1 or seed.shape[0] != batch:
            raise ValueError(f"seed as a tensor must be int64 of shape ({batch},), got {seed.dtype} {tuple(seed.shape)}")
        if seed.device != device:
            raise ValueError(f"seed tensor is on {seed.device} but logits are on {device}")
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or an int64 tensor of shape (B,), got {type(seed).__name__}")
    if not 0 <= seed <= _MAX_SEED - batch:
        raise ValueError(f"seed must be in [0, 2^63 - B), got {seed}")
    return torch.arange(batch, dtype=torch.int64, device=device) + seed


def _check_args(offset, temperature, top_k, top_p, guidance_scale, uncond_logits) -> None:
    if isinstance(offset, bool) or not isinstance(offset, (int, torch.SymInt)):
        raise TypeError(f"offset must be an int (the step counter), got {type(offset).__name__}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be an int >= 0 (0 turns it off), got {top_k!r}")
    if not isinstance(top_p, (int, float)) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not isinstance(temperature, (int, float)) or not temperature >= 0.0 or temperature == float("inf"):
        raise ValueError(f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}")
    if (guidance_scale is None) != (uncond_logits is None):
        raise ValueError("guidance_scale and uncond_logits go together: give both for guidance, or neither")


def sample_block(
    logits: torch.Tensor,
    seed: int | torch.Tensor,
    offset: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    guidance_scale: float | None = None,
    uncond_logits: torch.Tensor | None = None,
    check: bool = True,
) -> torch.Tensor:
    """Draw tokens (B, L) int64 from logits (B, L, V), every position in parallel.

    temperature 0 is greedy (the lowest index of the maximum); top_k=1 is the same argmax. On CUDA
    rows with NaN/+inf logits come back as -1 without a host sync; with check=True (default) this
    function syncs once and raises instead. Pass check=False inside a decode loop and check the
    final tokens once.
    """
    if not _ext.loaded:
        _ext.load()
    _check_args(offset, temperature, top_k, top_p, guidance_scale, uncond_logits)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3:
        raise ValueError(f"logits must be a tensor of shape (B, L, V), got {getattr(logits, 'shape', type(logits))}")
    seeds = row_seeds(seed, logits.shape[0], logits.device)
    tokens = torch.ops.nbp.sample_block(
        logits, seeds, offset, float(temperature), top_k, float(top_p),
        1.0 if guidance_scale is None else float(guidance_scale), uncond_logits,
    )
    if check and tokens.is_cuda and not torch.compiler.is_compiling():
        if bool((tokens < 0).any()):
            raise ValueError("logits must be finite or -inf with at least one finite entry per row (after guidance)")
    return tokens


def sample_block_ref(
    logits: torch.Tensor,
    seed: int | torch.Tensor,
    offset: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    guidance_scale: float | None = None,
    uncond_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """The same draw in float64 PyTorch, step by step (sorting where the kernels select)."""
    _check_args(offset, temperature, top_k, top_p, guidance_scale, uncond_logits)
    B, L, V = logits.shape
    seeds = row_seeds(seed, B, logits.device)
    ninf = float("-inf")
    x = logits.double()
    if uncond_logits is not None:
        u = uncond_logits.double()
        bad = torch.isnan(u) | (u == float("inf"))
        masked = (x == ninf) | (u == ninf)
        x = torch.where(masked, torch.full_like(x, ninf), u + guidance_scale * (x - u))
    else:
        bad = torch.zeros_like(x, dtype=torch.bool)
    bad = bad | torch.isnan(x) | (x == float("inf")) | (x == ninf).all(-1, keepdim=True)
    if bad.any():
        raise ValueError("logits must be finite or -inf with at least one finite entry per row (after guidance)")
    if temperature == 0:
        return x.argmax(-1)
    mx = x.amax(-1, keepdim=True)
    finite = x > ninf
    keep = finite
    if 0 < top_k < V:
        kth = x.topk(top_k, dim=-1).values[..., -1:]  # -inf when a row has fewer finite entries
        keep = keep & (x >= kth)
    e = torch.where(keep, torch.exp((x - mx) * (1.0 / temperature)), torch.zeros_like(x))
    if top_p < 1.0:
        total = e.sum(-1, keepdim=True)
        desc = e.sort(-1, descending=True).values
        reach = (desc.cumsum(-1) < top_p * total).sum(-1, keepdim=True)  # entries before the cut
        reach = torch.minimum(reach, keep.sum(-1, keepdim=True) - 1)
        tau = desc.gather(-1, reach)
        keep = keep & (e >= tau)
        e = torch.where(keep, e, torch.zeros_like(e))
    u01 = philox.sampling_uniform(seeds, offset, torch.arange(L, device=logits.device))  # (B, L)
    target = u01[..., None] * e.sum(-1, keepdim=True)
    cum = e.cumsum(-1)
    first = (cum <= target).sum(-1)  # index of the first entry whose running sum exceeds target
    last_kept = V - 1 - keep.flip(-1).int().argmax(-1)
    return torch.minimum(first, last_kept)


def _register() -> None:
    @torch.library.register_fake("nbp::sample_block")
    def _fake(logits, seeds, offset, temperature, top_k, top_p, guidance_scale, uncond_logits):
        torch._check(logits.dim() == 3, lambda: "logits must be (B, L, V)")
        return torch.empty(logits.shape[:2], dtype=torch.int64, device=logits.device)
