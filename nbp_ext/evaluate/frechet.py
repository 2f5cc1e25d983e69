"""Fréchet distance between two sets of feature vectors, each taken as a Gaussian.

d² = |mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr((S_a^½ S_b S_a^½)^½), with S the sample covariances.
Everything runs in float64. The matrix square roots come from symmetric eigendecompositions (no
scipy): S_a^½ from the eigenvalues of S_a clamped at 0, and the trace term as the sum of the square
roots of the eigenvalues of S_a^½ S_b S_a^½, which is symmetric and positive semi-definite. This stays
real and finite where S_a S_b is singular (fewer videos than features, as in small FVD runs), where
a general square root of S_a S_b (scipy.linalg.sqrtm) can return complex parts.
"""

from __future__ import annotations

import torch


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def gaussian_frechet(mu_a: torch.Tensor, cov_a: torch.Tensor, mu_b: torch.Tensor, cov_b: torch.Tensor) -> float:
    """d² between N(mu_a, cov_a) and N(mu_b, cov_b): means (F,), symmetric PSD covariances (F, F)."""
    if mu_a.dim() != 1:
        raise ValueError(f"mu_a must be a mean vector (F,), got shape {tuple(mu_a.shape)}")
    f = mu_a.shape[0]
    expected = (("mu_a", mu_a, (f,)), ("mu_b", mu_b, (f,)), ("cov_a", cov_a, (f, f)), ("cov_b", cov_b, (f, f)))
    for name, x, shape in expected:
        if tuple(x.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} (means (F,), covariances (F, F)), got {tuple(x.shape)}")
    mu_a, mu_b = mu_a.double(), mu_b.double()
    cov_a, cov_b = (cov_a.double() + cov_a.double().T) / 2, (cov_b.double() + cov_b.double().T) / 2
    root_a = _psd_sqrt(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_sqrt = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    d2 = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(d2), 0.0)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Features a (N, F) and b (M, F), N, M >= 2 -> the Fréchet distance d² (not its square root,
    as FID and FVD report it)."""
    for name, x in (("a", a), ("b", b)):
        if x.dim() != 2 or x.shape[0] < 2:
            raise ValueError(f"{name} must be (N, F) features with N >= 2, got {tuple(x.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same feature width, got {a.shape[1]} and {b.shape[1]}")
    a, b = a.double(), b.double()
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))  # (F, F) each, unbiased
    return gaussian_frechet(a.mean(0), cov_a, b.mean(0), cov_b)
