"""The rendered corpus: deterministic bytes, mix == sum of stems, truth that matches the audio."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.audio import framewise_rms
from musicot.data.synth import render_shard
from musicot.data.table import PART_TABLES, STEMS, read_part


def _digest(path) -> str:
    data, _ = sf.read(str(path), dtype="int16")
    return hashlib.sha1(data.tobytes()).hexdigest()


def test_part_is_complete(mini_corpus):
    _config, part = mini_corpus
    tables, rejected = read_part(part)
    tracks = tables["tracks.parquet"]
    assert list(tracks["song_id"]) == ["synth00000", "synth00002"]  # shard 0 of 2
    assert len(rejected) == 0
    for name, columns in PART_TABLES.items():
        assert list(tables[name].columns) == list(columns)
    for _, t in tracks.iterrows():
        info = sf.info(t["audio_path"])
        assert (info.samplerate, info.channels) == (22050, 2)
        assert info.duration == pytest.approx(t["duration_s"], abs=1e-3)
        assert t["caption"] and t["lyrics"] and t["gender"] in ("male", "female")


def test_same_seed_renders_identical_audio(mini_corpus, tmp_path):
    config, part = mini_corpus
    render_shard(config, 0, tmp_path / "again")
    # every differing file at once: which stem (FluidSynth's or the voice's) broke determinism
    differ = [
        (song, name)
        for song in ("synth00000", "synth00002")
        for name in ("mix", *STEMS)
        if _digest(part / "audio" / song / f"{name}.flac")
        != _digest(tmp_path / "again" / "audio" / song / f"{name}.flac")
    ]
    assert not differ, f"a second render of the same songs differs in {differ}"


def test_mix_is_exactly_the_sum_of_stems(mini_corpus):
    _, part = mini_corpus
    for song_dir in sorted((part / "audio").iterdir()):
        mix, _ = sf.read(str(song_dir / "mix.flac"), dtype="int16")
        total = sum(sf.read(str(song_dir / f"{s}.flac"), dtype="int16")[0].astype(np.int32) for s in STEMS)
        np.testing.assert_array_equal(mix.astype(np.int32), total)
        assert np.abs(mix).max() > 1000  # not silent


def test_stem_volume_truth_matches_audio(mini_corpus):
    config, part = mini_corpus
    tables, _ = read_part(part)
    volume = tables["stem_volume.parquet"]
    hop = config["corpus"]["volume_hop_s"]
    for (song, stem), rows in volume.groupby(["song_id", "stem"]):
        audio, sr = sf.read(str(part / "audio" / song / f"{stem}.flac"), dtype="float32")
        expected = framewise_rms(audio, sr, hop)
        np.testing.assert_allclose(rows.sort_values("frame")["rms"].to_numpy(), expected, atol=1e-6)
    # the truth moves: every song has a stem that is loud somewhere and silent elsewhere
    for _, rows in volume.groupby("song_id"):
        per_stem = rows.groupby("stem")["rms"]
        assert ((per_stem.max() > 0.01) & (per_stem.min() < 1e-4)).any()


def test_lyric_timestamps_fall_inside_vocal_activity(mini_corpus):
    _, part = mini_corpus
    tables, _ = read_part(part)
    words = tables["lyric_words.parquet"]
    assert len(words) > 10
    for song, rows in words.groupby("song_id"):
        vocals, sr = sf.read(str(part / "audio" / song / "vocals.flac"), dtype="float32")
        inside = np.zeros(len(vocals), bool)
        for _, w in rows.iterrows():
            a, b = int(np.ceil(w["start"] * sr)), int(np.ceil(w["end"] * sr))
            segment = vocals[a:b]
            assert np.sqrt(np.mean(segment**2)) > 1e-3, (song, w["word"])
            inside[a:b] = True
        # outside every word the vocal stem is silent (a couple of samples of slack for rounding)
        assert np.abs(vocals[~np.convolve(inside, np.ones(5), "same").astype(bool)]).max() == 0
    lines = tables["lyric_lines.parquet"]
    for _, line in lines.iterrows():
        w = words[(words.song_id == line.song_id) & (words.line == line.line)]
        assert line.start == w.start.min() and line.end == pytest.approx(w.end.max())


def test_splits_are_exact(tmp_path):
    from musicot.data.synth import split_of

    splits = [split_of(i, 40, {"valid": 0.1, "reference": 0.1}, 1) for i in range(40)]
    assert pd.Series(splits).value_counts().to_dict() == {"train": 32, "valid": 4, "reference": 4}
