"""Fréchet Audio Distance between two sets of embeddings, computed as fadtk does.

FAD = |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^(1/2)) between Gaussians fitted to
per-window embeddings (fadtk uses windowed CLAP embeddings). fadtk cannot be installed beside
our pins, so this is our module. Instead of scipy's general `sqrtm` of the non-symmetric
product C_a C_b (fadtk's route, which needs an eps retry and drops imaginary parts), the trace
term is tr((S C_b S)^(1/2)) with S = C_a^(1/2): the same value, from two symmetric
eigendecompositions, always real and finite.

With ~100 songs FAD is biased upwards (it shrinks as 1/N with the number of samples) and noisy,
so two more numbers go beside it:
* FAD∞ (fadtk's `score_inf`): FAD of random subsets of growing size N, a line fitted against
  1/N, its intercept;
* a bootstrap confidence interval that resamples whole songs (all windows of a song together),
  because windows of one song are not independent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Gaussian:
    """Mean and covariance of a set of embeddings."""

    mean: np.ndarray
    cov: np.ndarray

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> Gaussian:
        """Fit (n, d) embeddings, n >= 2 (covariance with n - 1 in the denominator, as numpy's)."""
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"FAD needs a (n >= 2, dim) array of embeddings, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embeddings hold NaN or inf values")
        return cls(x.mean(axis=0), np.cov(x, rowvar=False))

    @cached_property
    def root(self) -> np.ndarray:
        """C^(1/2), computed once: a reference set is compared with many resamples (bootstrap, FAD∞)."""
        return _psd_sqrt(self.cov)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clipped)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """Fréchet distance between two Gaussians (the squared 2-Wasserstein distance).

    The trace term takes the root of `b` (pass the fixed reference second: its root is cached)."""
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"embedding dimensions differ: {a.mean.shape[0]} vs {b.mean.shape[0]}")
    cross = np.linalg.eigvalsh(b.root @ a.cov @ b.root)
    trace_sqrt = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    diff = a.mean - b.mean
    value = float(diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2.0 * trace_sqrt)
    return max(value, 0.0)  # rounding can leave -1e-15 for identical sets


def fad(evaluated: np.ndarray, reference: np.ndarray) -> float:
    """FAD between (n, d) evaluated and (m, d) reference embeddings."""
    return frechet_distance(Gaussian.fit(evaluated), Gaussian.fit(reference))


def fad_infinity(
    evaluated: np.ndarray, reference: np.ndarray, rng: np.random.Generator, points: int = 15, min_n: int = 10
) -> tuple[float, float]:
    """(FAD∞, slope): FAD of random subsets of `points` sizes from `min_n` to all, fitted against 1/N."""
    n = len(evaluated)
    if n < max(min_n, 3):
        raise ValueError(f"FAD∞ needs at least {max(min_n, 3)} evaluated embeddings, got {n}")
    ref = Gaussian.fit(reference)
    sizes = np.unique(np.linspace(min_n, n, points).astype(int))
    scores = [frechet_distance(Gaussian.fit(evaluated[rng.choice(n, size, replace=False)]), ref) for size in sizes]
    slope, intercept = np.polyfit(1.0 / sizes, scores, 1)
    return float(intercept), float(slope)


def bootstrap_ci(
    evaluated: np.ndarray,
    reference: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
    n_boot: int = 200,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile CI of FAD when the evaluated songs (`groups`: a song id per embedding) are resampled."""
    groups = np.asarray(groups)
    if len(groups) != len(evaluated):
        raise ValueError(f"{len(groups)} group labels for {len(evaluated)} embeddings")
    songs = np.unique(groups)
    rows = [np.flatnonzero(groups == song) for song in songs]
    ref = Gaussian.fit(reference)
    values = []
    for _ in range(n_boot):
        pick = np.concatenate([rows[i] for i in rng.integers(0, len(songs), len(songs))])
        values.append(frechet_distance(Gaussian.fit(evaluated[pick]), ref))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
