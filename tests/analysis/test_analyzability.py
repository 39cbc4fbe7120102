"""Analyzability metric: exact on constructed data, exclusion rule as in the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.analysis.analyzability import analyzability, anchor_similarity, window_volume_from_truth


def test_anchor_similarity_is_cosine():
    e = np.array([[1.0, 0.0], [1.0, 1.0]])
    a = np.array([[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(anchor_similarity(e, a), [[1, 0], [2**-0.5, 2**-0.5]])


def test_window_volume_is_power_mean_of_overlapping_frames():
    volume = pd.DataFrame(
        dict(song_id="s", stem="bass", frame=[0, 1, 2, 3], start=[0.0, 1, 2, 3], end=[1.0, 2, 3, 4], rms=[1.0, 0, 0, 2])
    )
    windows = pd.DataFrame(dict(song_id="s", window=[0, 1], start=[0.0, 2.0], end=[2.0, 4.0]))
    out = window_volume_from_truth(volume, windows)
    np.testing.assert_allclose(out["rms"], [np.sqrt(0.5), np.sqrt(2.0)])


def test_pearson_pooled_per_song_and_exclusion():
    rng = np.random.default_rng(0)
    windows = pd.DataFrame(dict(song_id=np.repeat(["a", "b", "quiet"], 6), window=np.tile(np.arange(6), 3)))
    vol = rng.uniform(0.02, 0.2, size=18)
    vol[12:] = 1e-4  # the quiet song's stem: excluded
    volume = windows.assign(stem="drums", rms=vol)
    sims = np.zeros((18, 5))
    sims[:, 2] = 3 * vol + 1  # drums anchor is column 2: perfectly linear except for the quiet song
    sims[12:, 2] = rng.uniform(size=6)
    out = analyzability(windows, sims, volume).set_index("anchor")
    assert out.loc["drums", "r_pooled"] == pytest.approx(1.0)
    assert out.loc["drums", "r_per_song_mean"] == pytest.approx(1.0)
    assert out.loc["drums", "n_songs"] == 2 and out.loc["drums", "n_excluded"] == 1
    assert np.isnan(out.loc["vocals", "r_pooled"])  # no vocal volume rows
