"""Table 1's per-system metrics: clip cutting, windowing as fadtk does, FAD summary with CI and FAD-infinity."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from musicot.metrics import evaluate as E


class FakeClap:
    """Embeds a window as (mean, rms, 1): enough to check which samples each window holds."""

    spec = SimpleNamespace(sample_rate=100, clip_samples=200)  # 2 s windows

    def embed_audio(self, windows: np.ndarray) -> np.ndarray:
        w = np.asarray(windows)
        return np.stack([w.mean(axis=1), np.sqrt((w**2).mean(axis=1)), np.ones(len(w))], axis=1).astype(np.float32)


def test_clip_starts():
    np.testing.assert_array_equal(E.clip_starts(17.0, 8.0), [0.0, 8.0])
    np.testing.assert_array_equal(E.clip_starts(5.0, 8.0), [0.0])  # a shorter song is one clip


def test_embed_files_windows_each_clip(tmp_path):
    path = tmp_path / "song.wav"
    audio = np.concatenate([np.full(300, 0.5), np.full(300, -0.25)])  # 6 s at 100 Hz
    sf.write(str(path), audio, 100)
    table, emb = E.embed_files([path], FakeClap(), hop_s=1.0, clip_s=3.0, labels=["s1"])
    # two 3 s clips, each with windows at 0 and 1 s (2 s windows, 1 s hop)
    assert list(table["clip"]) == [0, 0, 1, 1] and list(table["start"]) == [0.0, 1.0, 3.0, 4.0]
    assert set(table["song"]) == {"s1"}
    np.testing.assert_allclose(emb[:2, 0], 0.5, atol=1e-4)
    np.testing.assert_allclose(emb[2:, 0], -0.25, atol=1e-4)
    whole, _ = E.embed_files([path], FakeClap(), hop_s=2.0)
    assert list(whole["start"]) == [0.0, 2.0, 4.0] and set(whole["song"]) == {"song"}
    bad = tmp_path / "nan.wav"
    sf.write(str(bad), np.full(100, np.nan), 100, subtype="FLOAT")
    with pytest.raises(ValueError, match="non-finite"):
        E.embed_files([bad], FakeClap(), hop_s=1.0)


def test_fad_summary_counts_and_intervals():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((300, 3))
    evaluated = rng.standard_normal((100, 3)) + 0.5
    songs = np.array([f"p{k // 2}" for k in range(100)])  # two windows per song
    cfg = dict(bootstrap=200, confidence=0.9, inf_points=5)
    out = E.fad_summary(evaluated, songs, reference, cfg, seed=0, what="test")
    assert out["n_songs"] == 50 and out["n_windows"] == 100 and out["n_reference_windows"] == 300
    assert out["ci_low"] < out["value"] < out["ci_high"]
    assert 0 < out["fad_inf"] < out["value"] + 0.5
    none = E.fad_summary(evaluated, songs, reference, dict(cfg, bootstrap=0), seed=0, what="test")
    assert none["ci_low"] is None and none["value"] == out["value"]
    json.dumps(out)  # the summary goes into a JSON file as it is


def test_system_metrics_refuses_a_partial_generation(tmp_path):
    songs = tmp_path / "musicot"
    songs.mkdir()
    (songs / E.GENERATION_FILE).write_text(json.dumps({"n_prompts": 3}))
    sf.write(str(songs / "p001.flac"), np.zeros(100), 100)
    with pytest.raises(ValueError, match=r"1 songs but generation\.json lists 3"):
        E.system_metrics({"evaluate": {"fad": {}}, "seed": 0}, songs, tmp_path, FakeClap(), tmp_path / "out")
