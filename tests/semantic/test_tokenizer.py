from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from musicot.semantic import probes as P
from musicot.semantic.features import Normaliser
from musicot.semantic.model import BestRq
from musicot.semantic.probe import quality_rows, run_probes, token_stats
from musicot.semantic.tokenizer import Tokenizer
from musicot.semantic.tokens import write_tokens
from musicot.semantic.train import fit_kmeans, train
from tests.semantic.conftest import SR, toy_song


@pytest.fixture
def tokenizer(toy_cfg) -> Tokenizer:
    cfg = toy_cfg()
    torch.manual_seed(0)
    encoder = BestRq(cfg.model, cfg.features, cfg.ssl).encoder
    rng = np.random.default_rng(0)
    normaliser = Normaliser(rng.normal(size=cfg.features.dim), np.ones(cfg.features.dim))
    tok = Tokenizer(encoder, cfg.features, normaliser, cfg.layer, None, chunk_frames=20)
    frames = tok.layer_states(tok.features(toy_song(rng, 6.0), SR), [cfg.layer])[0]
    tok.centroids = torch.from_numpy(fit_kmeans(frames, cfg.n_tokens, cfg.kmeans, seed=0))
    return tok


def test_tokens_are_int16_one_per_40_ms_covering_the_audio(tokenizer):
    rng = np.random.default_rng(1)
    for seconds in (0.5, 1.01, 3.3):  # shorter than, between and over several chunks of 20 frames
        codes = tokenizer.tokens(toy_song(rng, seconds), SR)
        assert codes.dtype == np.int16
        assert len(codes) == int(np.ceil(seconds / 0.04 - 1e-9))
        assert codes.min() >= 0 and codes.max() < len(tokenizer.centroids)
    assert tokenizer.frame_rate == pytest.approx(25.0)
    mono = toy_song(rng, 1.0)[:, 0]
    assert len(tokenizer.tokens(mono, SR)) == 25


def test_tokenizer_save_load_reproduces_tokens(tokenizer, tmp_path):
    audio = toy_song(np.random.default_rng(2), 2.5)
    before = tokenizer.tokens(audio, SR)
    tokenizer.save(tmp_path / "tok")
    assert (tmp_path / "tok" / "model.safetensors").exists()
    loaded = Tokenizer.load(tmp_path / "tok")
    np.testing.assert_array_equal(loaded.tokens(audio, SR), before)
    assert loaded.layer == tokenizer.layer and loaded.chunk == tokenizer.chunk


def test_load_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a semantic tokenizer"):
        Tokenizer.load(tmp_path)


def test_probe_labels_follow_the_truth():
    times = P.frame_times(50, 0.04)  # 0.02 .. 1.98 s
    volume = pd.DataFrame(
        {"stem": "bass", "start": [0.0, 0.5, 1.0, 1.5], "end": [0.5, 1.0, 1.5, 2.0], "rms": [0.0, 0.05, 0.004, 0.1]}
    )
    labels = P.stem_labels(volume, times, {"bass": 0.1, "drums": 0.1}, fraction=0.1)
    window = np.floor(times / 0.5).astype(int)  # the truth frame holding each token frame's centre
    np.testing.assert_array_equal(labels["bass"], np.array([0.0, 1.0, 0.0, 1.0])[window])
    assert np.isnan(labels["drums"]).all()  # no truth rows: unknown, not silent
    words = pd.DataFrame({"start": [0.1], "end": [0.3]})
    sung = P.sung_labels(words, times, known=True)
    assert sung.sum() == 5 and np.isnan(P.sung_labels(words, times, known=False)).all()
    stats = P.codebook_stats([np.array([0, 0, 1, 1], np.int16)], 4)
    assert stats == {"perplexity": pytest.approx(2.0), "dead_codes": 2.0}


def test_train_tokens_probe_end_to_end_without_ctc(toy_tracks, toy_cfg, tmp_path):
    cfg = toy_cfg(ctc={"enabled": False})
    train(cfg, toy_tracks, tmp_path / "enc", tmp_path / "state")
    assert not (tmp_path / "enc" / "ctc_head.safetensors").exists() and not (tmp_path / "state" / "ctc").exists()
    tok = Tokenizer.load(tmp_path / "enc")
    summary = write_tokens(tok, toy_tracks, tmp_path / "tokens")
    assert summary["songs"] == 4 and summary["tokens_per_s"] == pytest.approx(25.0)
    codes = np.load(tmp_path / "tokens" / "toy00.npy")
    assert codes.dtype == np.int16 and len(codes) == 100
    stats = token_stats(tok, toy_tracks, tmp_path / "tokens")
    probe = run_probes(tok, cfg, toy_tracks, tmp_path / "tokens")
    assert set(probe["bacc"]["vocals"]) == {"logmel", "logmel_framenorm", "tokens", "layer0", "layer1", "layer2"}
    metrics = json.loads((tmp_path / "enc" / "metrics.json").read_text())
    rows = pd.DataFrame(quality_rows(metrics, stats, probe, cfg))
    assert {"ssl", "ctc", "tokens", "probe"} == set(rows["step"])
    assert rows.loc[rows["metric"] == "tokens_per_s", "value"].item() == pytest.approx(25.0)
    assert rows.loc[(rows["step"] == "ctc") & (rows["metric"] == "enabled"), "value"].item() == 0.0
