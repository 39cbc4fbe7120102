from __future__ import annotations

import numpy as np
import pytest

from musicot.config import validate
from musicot.semantic.config import SemanticConfig
from musicot.semantic.data import span_mask
from musicot.semantic.features import Normaliser, audio_features, n_frames


@pytest.fixture
def default_features():
    return SemanticConfig.from_config(validate({})).features


def test_default_features_are_25_hz_rows_of_n_mels_times_stack(default_features):
    cfg = default_features
    assert cfg.frame_s == pytest.approx(0.04)
    rng = np.random.default_rng(0)
    for seconds, sr in ((1.0, 44100), (2.01, 22050), (0.05, 16000)):
        stereo = rng.normal(0, 0.1, (round(seconds * sr), 2)).astype(np.float32)
        rows = audio_features(stereo, sr, cfg)
        assert rows.shape == (int(np.ceil(seconds / 0.04 - 1e-9)), cfg.n_mels * cfg.stack)
        assert rows.dtype == np.float32 and np.isfinite(rows).all()
    assert n_frames(16000, cfg) == 25 and n_frames(16001, cfg) == 26


def test_stacking_is_frame_major(default_features):
    """Row t holds mel frames 4t..4t+3 side by side: a click in mel frame 5 lands in row 1, block 1."""
    cfg = default_features
    x = np.zeros(cfg.sample_rate, np.float32)
    x[5 * cfg.hop_length] = 1.0
    rows = audio_features(x, cfg.sample_rate, cfg).reshape(-1, cfg.stack, cfg.n_mels)
    energy = rows.mean(-1)
    assert np.unravel_index(energy.argmax(), energy.shape) == (1, 1)


def test_normaliser_standardises_per_feature(tmp_path):
    rng = np.random.default_rng(1)
    parts = [
        rng.normal(3, 2, (50, 6)).astype(np.float32) * np.arange(1, 7),
        rng.normal(3, 2, (30, 6)).astype(np.float32),
    ]
    norm = Normaliser.fit(parts)
    z = norm(np.concatenate(parts))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-3)
    norm.save(tmp_path)
    np.testing.assert_array_equal(Normaliser.load(tmp_path)(parts[0]), norm(parts[0]))


def test_span_mask_masks_whole_spans_and_every_row():
    rng = np.random.default_rng(2)
    mask = span_mask((64, 100), 0.04, 10, rng)
    assert mask.any(1).all()
    assert 0.2 < mask.mean() < 0.5  # 1 - 0.96**10 = 0.34 of the frames
    none_drawn = span_mask((3, 30), 1e-9, 5, rng)
    assert (none_drawn.sum(1) == 5).all()  # a row without a drawn span still gets one
