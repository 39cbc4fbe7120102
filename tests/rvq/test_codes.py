"""Coarse-to-fine flattening and per-level vocabulary ids (property-style over random shapes)."""

from __future__ import annotations

import numpy as np
import pytest

from musicot.rvq.codes import (
    flatten_coarse_to_fine,
    from_vocab_ids,
    to_vocab_ids,
    unflatten_coarse_to_fine,
    vocab_size,
)

RNG = np.random.default_rng(0)
SHAPES = [(int(RNG.integers(0, 40)), int(RNG.integers(1, 10)), int(RNG.integers(1, 2000))) for _ in range(50)]


def test_flatten_order_is_level_major():
    codes = np.array([[1, 2, 3], [4, 5, 6]])  # 2 frames, 3 levels
    assert flatten_coarse_to_fine(codes).tolist() == [1, 4, 2, 5, 3, 6]


def test_flatten_matches_definition():
    m, levels = 7, 4
    codes = RNG.integers(0, 100, (m, levels))
    flat = flatten_coarse_to_fine(codes)
    for k in range(levels):
        for frame in range(m):
            assert flat[k * m + frame] == codes[frame, k]
    assert flat.dtype == np.int64


@pytest.mark.parametrize(("m", "levels", "k"), SHAPES)
def test_flatten_inverse_is_exact(m, levels, k):
    codes = RNG.integers(0, k, (m, levels))
    back = unflatten_coarse_to_fine(flatten_coarse_to_fine(codes), levels)
    assert back.shape == (m, levels)
    np.testing.assert_array_equal(back, codes)
    flat = RNG.integers(0, k, m * levels)
    np.testing.assert_array_equal(flatten_coarse_to_fine(unflatten_coarse_to_fine(flat, levels)), flat)


@pytest.mark.parametrize(("m", "levels", "k"), SHAPES)
def test_vocab_ids_inverse_and_blocks(m, levels, k):
    codes = RNG.integers(0, k, (m, levels))
    ids = to_vocab_ids(codes, k)
    np.testing.assert_array_equal(ids, codes + k * np.arange(levels))
    for level in range(levels):
        assert ((ids[:, level] >= level * k) & (ids[:, level] < (level + 1) * k)).all()
    if m:
        assert ids.max() < vocab_size(levels, k)
    np.testing.assert_array_equal(from_vocab_ids(ids, k), codes)


def test_vocab_ids_examples():
    assert to_vocab_ids(np.array([[0, 0, 5]]), 64).tolist() == [[0, 64, 133]]


def test_invalid_inputs_raise():
    with pytest.raises(ValueError):
        unflatten_coarse_to_fine(np.arange(7), 2)
    with pytest.raises(ValueError):
        flatten_coarse_to_fine(np.arange(6))
    with pytest.raises(TypeError):
        flatten_coarse_to_fine(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        to_vocab_ids(np.array([[64, 0]]), 64)
    with pytest.raises(ValueError):
        from_vocab_ids(np.array([[0, 10]]), 64)  # level-1 column holds a level-0 id
