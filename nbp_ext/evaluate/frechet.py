"""Fréchet distance between two sets of feature vectors, each taken as a Gaussian.

d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½), with S the sample covariances.
The matrix square roots come from symmetric eigendecompositions in float64 (no scipy); the trace
term equals the sum of the square roots of the eigenvalues of S_a^½ S_b S_a^½, which is symmetric
and positive semi-definite.
"""

from __future__ import annotations

import torch


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Features a (N, F) and b (M, F), N, M >= 2 -> the Fréchet distance d² (not its square root,
    as FID and FVD report it)."""
    for name, x in (("a", a), ("b", b)):
        if x.dim() != 2 or x.shape[0] < 2:
            raise ValueError(f"{name} must be (N, F) features with N >= 2, got {tuple(x.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature width, got {a.shape[1]} and {b.shape[1]}")
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))  # (F, F) each, unbiased
    root_a = _psd_sqrt(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    d2 = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(d2), 0.0)
