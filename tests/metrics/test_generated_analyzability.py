"""Analyzability of generated songs on a constructed case: stems and thought known, so r is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.metrics.analyzability import (
    fine_volume,
    frame_spans,
    generated_analyzability,
    song_thoughts,
    stem_volumes,
)

ANCHORS = ("vocals", "drums")
SR, WINDOW = 100, 1.0  # 1 s "thought frames" of 100 samples keep the audio tiny


def constant_stem(levels: list[float], duration_s: float) -> np.ndarray:
    """A stem whose RMS over frame k is levels[k] (a +-level square wave), cut at duration_s."""
    wave = np.concatenate([level * np.where(np.arange(SR) % 2, 1.0, -1.0) for level in levels])
    return wave[: round(duration_s * SR)]


def test_frame_spans_cut_to_the_audio():
    assert frame_spans(4, 10.0, 25.0) == [(0, 0.0, 10.0), (1, 10.0, 20.0), (2, 20.0, 25.0)]
    assert frame_spans(2, 10.0, 8.0) == [(0, 0.0, 8.0)]


def test_constructed_songs_give_the_r_they_should():
    rng = np.random.default_rng(0)
    n_songs, n_frames, duration = 12, 4, 3.0  # the thought plans 4 frames, the audio covers 3
    thoughts, similarity, durations, volumes = {}, {}, {}, []
    vocal_levels, vocal_sims, drum_levels, drum_sims = [], [], [], []
    for s in range(n_songs):
        pid = f"p{s:02d}"
        thoughts[pid] = rng.integers(0, 8, (n_frames, 2))
        durations[pid] = duration
        vocals = rng.uniform(0.05, 0.5, n_frames)
        drums = rng.uniform(0.05, 0.5, n_frames)
        sims = np.stack([2.0 * vocals + 0.1, rng.standard_normal(n_frames)], axis=1)  # vocals: exact, drums: noise
        if s == 0:
            drums[:] = 0.001  # a silent stem: excluded from the drums r (mean volume < 1e-2)
        similarity[pid] = sims
        stems = {"vocals": constant_stem(list(vocals), duration), "drums": constant_stem(list(drums), duration)}
        spans = frame_spans(n_frames, WINDOW, duration)
        volumes += [dict(song_id=pid, **row) for row in stem_volumes(stems, SR, spans)]
        vocal_levels += list(vocals[:3])
        vocal_sims += list(sims[:3, 0])
        if s != 0:
            drum_levels += list(drums[:3])
            drum_sims += list(sims[:3, 1])
    table, windows = generated_analyzability(
        thoughts, pd.DataFrame(volumes), similarity, durations, WINDOW, ANCHORS, 1e-2, min_songs=10
    )
    table = table.set_index("anchor")
    assert table.loc["vocals", "r_pooled"] == pytest.approx(1.0)
    assert table.loc["vocals", "n_windows"] == 36 and table.loc["vocals", "n_songs"] == 12
    assert table.loc["drums", "r_pooled"] == pytest.approx(np.corrcoef(drum_levels, drum_sims)[0, 1])
    assert table.loc["drums", "n_songs"] == 11 and table.loc["drums", "n_excluded"] == 1
    assert not table["few_songs"].any()
    # per-window table: one row per covered frame, the excluded stem's volume NaN
    assert len(windows) == 36 and set(windows["frame"]) == {0, 1, 2}
    assert windows.loc[windows["prompt_id"] == "p00", "volume_drums"].isna().all()
    np.testing.assert_allclose(windows["volume_vocals"], vocal_levels)
    np.testing.assert_allclose(windows["sim_vocals"], vocal_sims)


def test_few_songs_are_marked():
    thoughts = {f"p{s}": np.zeros((1, 2), int) for s in range(3)}
    sims = {p: np.array([[float(k), 0.0]]) for k, p in enumerate(thoughts)}
    volumes = pd.DataFrame(
        [dict(song_id=p, window=0, stem=a, rms=0.1 * (k + 1)) for k, p in enumerate(thoughts) for a in ANCHORS]
    )
    table, _ = generated_analyzability(thoughts, volumes, sims, dict.fromkeys(thoughts, 1.0), 1.0, ANCHORS, 1e-2, 10)
    assert table["few_songs"].all()
    assert table.set_index("anchor").loc["vocals", "r_pooled"] == pytest.approx(1.0)


def test_song_thoughts_and_fine_volume():
    rows = pd.DataFrame([dict(prompt_id="a", frame=f, level=lv, code=10 * f + lv) for f in (1, 0) for lv in (1, 0)])
    np.testing.assert_array_equal(song_thoughts(rows)["a"], [[0, 1], [10, 11]])
    fine = pd.DataFrame(fine_volume({"vocals": constant_stem([0.2, 0.4], 2.0)}, SR, 0.5))
    np.testing.assert_allclose(fine["rms"], [0.2, 0.2, 0.4, 0.4])
    np.testing.assert_allclose(fine["end"], [0.5, 1.0, 1.5, 2.0])
