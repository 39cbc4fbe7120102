"""The shifted evaluation corpus really differs from the training corpus, and shares no random stream with it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.config import build, validate
from musicot.data.compose import PITCHED_STEMS, SynthConfig, compose_song, rng_key
from musicot.data.shifted import make_corpus, shift_config, synth_config
from musicot.data.styles import STANDARD_KIT, STYLES
from musicot.data.synth import section_envelope
from musicot.data.table import STEMS

N_TRAIN = 64  # the default run's corpus.synth.n_songs


def _config(n_songs: int = 24) -> dict:
    return validate(
        {
            "seed": 7,
            "corpus": {"sample_rate": 22050, "synth": {"n_songs": N_TRAIN}},
            "analysis": {"shifted": {"n_songs": n_songs, "duration_s": [9, 11]}},
        }
    )


@pytest.fixture(scope="module")
def plans():
    config = _config()
    train_cfg = build(SynthConfig, config["corpus"]["synth"])
    cfg, shift = synth_config(config), shift_config(config["analysis"]["shifted"])
    train = [compose_song(i, train_cfg, config["seed"]) for i in range(N_TRAIN)]
    shifted = [compose_song(i, cfg, config["seed"], shift) for i in range(cfg.n_songs)]
    return config, train, shifted


def test_programs_kits_modes_and_tempos_lie_outside_the_training_sets(plans):
    _, train, shifted = plans
    for stem in PITCHED_STEMS:
        styles = {getattr(s, stem).program for s in STYLES.values()}
        trained = {p.parts[stem].program for p in train}
        drawn = {p.parts[stem].program for p in shifted}
        assert trained <= styles
        assert drawn and not drawn & styles, (stem, drawn & styles)
    assert {p.parts["drums"].program for p in train} == {STANDARD_KIT}
    assert STANDARD_KIT not in {p.parts["drums"].program for p in shifted}
    assert {p.mode for p in train} <= {"major", "minor"}
    assert not {p.mode for p in shifted} & {"major", "minor"}
    low, high = min(s.tempo[0] for s in STYLES.values()), max(s.tempo[1] for s in STYLES.values())
    assert all(not low <= p.tempo_bpm <= high for p in shifted)
    assert all(low <= p.tempo_bpm <= high for p in train)


def test_balances_gains_and_absent_stems_differ(plans):
    config, train, shifted = plans
    assert all(not p.section_gain_db and not p.absent for p in train)  # the training corpus is untouched
    width = config["analysis"]["shifted"]["section_gain_db"]
    spread = np.array([g for p in shifted for gains in p.section_gain_db.values() for g in gains])
    assert spread.max() - spread.min() > width  # wider than any velocity dynamics
    gone = [p for p in shifted if p.absent]
    assert gone, "some shifted song leaves an instrument out"
    for p in gone:
        assert all(p.absent not in s.active for s in p.sections)
        assert not p.parts[p.absent].notes
    train_gain = config["corpus"]["synth"]["stem_gain_db"]
    shifted_gain = config["analysis"]["shifted"]["stem_gain_db"]
    offsets = {s: shifted_gain[s] - train_gain[s] for s in STEMS}
    assert max(offsets.values()) - min(offsets.values()) >= 6  # the balance between stems moves, not one level


def test_no_training_random_stream_appears_in_the_shifted_corpus(plans):
    config, train, shifted = plans
    seed = config["seed"]
    train_keys = {rng_key(i, seed) for i in range(N_TRAIN)}
    shifted_keys = {rng_key(i, seed, shifted=True) for i in range(len(shifted))}
    assert not train_keys & shifted_keys
    # nor, by accident, a composition: no shifted song repeats a training song's lyrics and tempo
    assert not {(tuple(p.lines), p.tempo_bpm) for p in train} & {(tuple(p.lines), p.tempo_bpm) for p in shifted}


def test_section_envelope_holds_each_sections_gain():
    config = _config(2)
    cfg, shift = synth_config(config), shift_config(config["analysis"]["shifted"])
    plan = compose_song(0, cfg, config["seed"], shift)
    sr = 1000
    gains = plan.section_gain_db["bass"]
    env = section_envelope(plan, gains, int(plan.duration_s * sr), sr)
    for section, gain in zip(plan.sections, gains, strict=True):
        middle = int((section.start + section.end) / 2 * sr)
        assert 20 * np.log10(env[middle]) == pytest.approx(gain, abs=1e-3)


def test_rendered_corpus_sums_and_records_its_draws(tmp_path):
    config = _config(2)
    songs = make_corpus(config, tmp_path)
    tracks = pd.read_parquet(tmp_path / "tracks.parquet")
    assert list(tracks["split"]) == ["shifted", "shifted"]
    assert list(songs["song_id"]) == list(tracks["song_id"])
    assert [json.loads(k) for k in songs["rng_key"]] == [[7, 7919, 0], [7, 7919, 1]]
    for song in tracks.itertuples():
        mix, _ = sf.read(song.audio_path, dtype="int16")
        total = sum(sf.read(f"{song.stems_dir}/{s}.flac", dtype="int16")[0].astype(np.int32) for s in STEMS)
        np.testing.assert_array_equal(mix.astype(np.int32), total)
    volume = pd.read_parquet(tmp_path / "stem_volume.parquet")
    assert set(volume["song_id"]) == set(tracks["song_id"])
