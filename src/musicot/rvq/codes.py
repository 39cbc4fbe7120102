"""The musical-thought token layout: RVQ codes of a song flattened coarse-to-fine.

A song of M windows quantized by an L-level residual VQ has codes of shape (M, L). The
language model sees them flattened level-major, "coarse-to-fine": all M frames of level 1,
then all M frames of level 2, ..., then level L, so flat[k * M + m] = codes[m, k]. Each level
owns its own block of K vocabulary ids (`to_vocab_ids`: level k code c -> k * K + c), so a
token id alone says which level it came from.
"""

from __future__ import annotations

import numpy as np


def _as_codes(codes) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"codes must have shape (frames, levels), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"codes must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def flatten_coarse_to_fine(codes) -> np.ndarray:
    """(M, L) codes -> (M * L,): all M frames of level 1, then level 2, ..., level L."""
    return np.ascontiguousarray(_as_codes(codes).T).reshape(-1)


def unflatten_coarse_to_fine(flat, n_levels: int) -> np.ndarray:
    """Inverse of `flatten_coarse_to_fine`: (M * L,) -> (M, L)."""
    flat = np.asarray(flat)
    if flat.ndim != 1:
        raise ValueError(f"flat codes must be one-dimensional, got shape {flat.shape}")
    if n_levels < 1 or flat.size % n_levels:
        raise ValueError(f"{flat.size} tokens do not split into {n_levels} levels")
    return _as_codes(flat.reshape(n_levels, -1).T.copy())


def to_vocab_ids(codes, codebook_size: int) -> np.ndarray:
    """(M, L) codes -> (M, L) vocabulary ids: level k (0-based) code c becomes k * K + c."""
    arr = _as_codes(codes)
    if arr.size and (arr.min() < 0 or arr.max() >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size}), got [{arr.min()}, {arr.max()}]")
    return arr + codebook_size * np.arange(arr.shape[1], dtype=np.int64)


def from_vocab_ids(ids, codebook_size: int) -> np.ndarray:
    """Inverse of `to_vocab_ids`; raises when an id sits in another level's block."""
    arr = _as_codes(ids)
    offsets = codebook_size * np.arange(arr.shape[1], dtype=np.int64)
    codes = arr - offsets
    if codes.size and (codes.min() < 0 or codes.max() >= codebook_size):
        raise ValueError("vocabulary ids do not match their level: column k must hold ids in [k*K, (k+1)*K)")
    return codes


def vocab_size(n_levels: int, codebook_size: int) -> int:
    """Number of distinct musical-thought token ids (L * K)."""
    return n_levels * codebook_size
