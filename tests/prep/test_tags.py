"""Tags step: tempo on a kick track, key on sine triads, metadata/zero-shot rules, vocabulary, scoring, rejections."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from musicot.audio import write_flac
from musicot.config import build, validate
from musicot.data.styles import STYLES
from musicot.prep import beats, tags

SR = 22050


def _tone(midi_notes: list[int], seconds: float, amp: float = 0.15) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(amp * np.sin(2 * np.pi * 440.0 * 2 ** ((n - 69) / 12) * t) for n in midi_notes)
    return y * np.minimum(1.0, np.minimum(t, seconds - t) / 0.01)  # 10 ms fades: no clicks between chords


def kick_track(bpm: float, seconds: float) -> np.ndarray:
    """A pitch-dropping sine kick on every beat."""
    t = np.arange(int(0.15 * SR)) / SR
    kick = np.sin(2 * np.pi * 60.0 * t * (1 + 2 * np.exp(-40 * t))) * np.exp(-25 * t)
    y = np.zeros(int(seconds * SR))
    for start in np.arange(0.0, seconds - 0.2, 60.0 / bpm):
        i = int(start * SR)
        y[i : i + len(kick)] += 0.8 * kick
    return y


def chord_loop(chords: list[list[int]], repeats: int = 3) -> np.ndarray:
    return np.tile(np.concatenate([_tone(c, 1.0) for c in chords]), repeats)


A_MINOR = [[45, 57, 60, 64], [50, 62, 65, 69], [52, 64, 68, 71], [45, 57, 60, 64]]  # Am Dm E Am, bass + triad
C_MAJOR = [[48, 60, 64, 67], [53, 65, 69, 72], [55, 67, 71, 74], [48, 60, 64, 67]]  # C F G C


@pytest.fixture(scope="module")
def cfg() -> tags.TagsConfig:
    return build(tags.TagsConfig, validate({})["prep"]["tags"])


def _track(song_id: str, path: Path, **meta: str) -> dict:
    base = dict(genre="", subgenre="", mood="", gender="unknown", instruments="", tempo_bpm=np.nan, key="")
    return dict(song_id=song_id, audio_path=str(path), **(base | meta))


def test_config_matches_schema(cfg: tags.TagsConfig) -> None:
    assert cfg == tags.TagsConfig()


@pytest.mark.parametrize("bpm", [90.0, 128.0])
def test_tempo_of_a_kick_track(bpm: float, cfg: tags.TagsConfig) -> None:
    features = beats.analyse(kick_track(bpm, 20.0).astype(np.float32), SR)
    assert tags.tempo_accuracy(features.tempo_bpm, bpm, cfg.tempo_tolerance) == (True, True)
    period = np.diff(features.beats).mean() / features.fps
    assert period == pytest.approx(60.0 / bpm, rel=cfg.tempo_tolerance)


@pytest.mark.parametrize("profile", sorted(tags.KEY_PROFILES))
@pytest.mark.parametrize(("chords", "key"), [(A_MINOR, "A minor"), (C_MAJOR, "C major")])
def test_key_of_sine_triads(chords: list[list[int]], key: str, profile: str) -> None:
    features = beats.analyse(chord_loop(chords).astype(np.float32), SR)
    estimate, correlation = tags.estimate_key(features.chroma, profile)
    assert estimate == key
    assert 0.5 < correlation <= 1.0


def test_tag_song_metadata_and_dsp(tmp_path: Path, cfg: tags.TagsConfig) -> None:
    path = tmp_path / "song.flac"
    write_flac(path, (kick_track(100.0, 12.0) + chord_loop(A_MINOR))[:, None], SR)
    track = _track("s1", path, genre="Funk", mood="dark", gender="none", instruments="drums, slap bass,drums")
    rows = pd.DataFrame(tags.tag_song(track, cfg))
    meta = rows[rows["source"] == "metadata"]
    assert sorted(zip(meta["family"], meta["tag"], strict=True)) == [
        ("gender", "instrumental"),
        ("genre", "funk"),
        ("instrument", "drums"),
        ("instrument", "slap bass"),
        ("mood", "dark"),
    ]
    assert (meta["value"] == 1.0).all()
    assert "subgenre" not in set(rows["family"])  # unknown and no scorer: nothing invented
    tempo = rows[rows["family"] == "tempo"].iloc[0]
    assert tempo["source"] == "dsp" and tempo["tag"] == "100"
    assert tempo["value"] == pytest.approx(100.0, rel=cfg.tempo_tolerance)
    assert rows[rows["family"] == "key"].iloc[0]["tag"] == "A minor"


class FixedScorer:
    """A zero-shot scorer that prefers tags alphabetically late (deterministic, no model)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[str]]] = []

    def score(self, audio: np.ndarray, sr: int, tags: list[str]) -> dict[str, float]:
        self.calls.append((sr, tags))
        return {t: i / len(tags) for i, t in enumerate(sorted(tags))}


def test_scorer_fills_only_unknown_families(tmp_path: Path, cfg: tags.TagsConfig) -> None:
    path = tmp_path / "song.flac"
    write_flac(path, np.stack([kick_track(120.0, 6.0)] * 2, axis=1), SR)
    scorer = FixedScorer()
    vocabulary = {f: [f"{f}_a", f"{f}_b", f"{f}_c", f"{f}_d"] for f in tags.FAMILIES}
    track = _track("s1", path, genre="rock", subgenre="punk", gender="male", instruments="drums")
    rows = pd.DataFrame(tags.tag_song(track, cfg, scorer=scorer, vocabulary=vocabulary))
    zero = rows[rows["source"] == "zero_shot"]
    assert [c[1] for c in scorer.calls] == [vocabulary["mood"]]  # the one family without metadata
    assert scorer.calls[0][0] == SR  # the file's own rate, for the scorer to resample as it needs
    assert zero["tag"].tolist() == ["mood_d"] and zero["value"].tolist() == [0.75]


def test_metadata_tags_mapping() -> None:
    out = tags.metadata_tags(dict(genre="unknown", mood="", gender="female", instruments="Piano,,vocals"))
    assert out == {"gender": ["female vocals"], "instrument": ["piano", "vocals"]}


def test_vocabulary_covers_the_corpus() -> None:
    vocab = tags.load_vocabulary()
    assert tuple(vocab) == tags.FAMILIES
    assert set(STYLES) <= set(vocab["genre"])
    for style in STYLES.values():
        assert set(style.subgenres) <= set(vocab["subgenre"])
        assert set(style.moods) <= set(vocab["mood"])
        voices = {style.bass.tag, style.piano.tag, style.guitar.tag, style.other.tag, "vocals", "drums"}
        assert voices <= set(vocab["instrument"])
    assert set(tags.GENDER_TAGS.values()) == set(vocab["gender"])
    vocab["genre"].append("polka")  # callers get a copy
    assert "polka" not in tags.load_vocabulary()["genre"]


def test_select_tags_cosine_threshold() -> None:
    embeddings = {
        "same": np.array([2.0, 0.0, 0.0]),
        "near": np.array([0.6, 0.8, 0.0]),  # cos 0.6
        "orthogonal": np.array([0.0, 0.0, 1.0]),
        "opposite": np.array([-1.0, 0.0, 0.0]),
        "zero": np.zeros(3),
    }
    prompt = np.array([1.0, 0.0, 0.0])
    assert tags.select_tags(prompt, embeddings, 0.5) == ["same", "near"]
    assert tags.select_tags(prompt, embeddings, 0.6) == ["same"]  # strictly greater
    assert tags.select_tags(prompt, embeddings, -2.0) == ["same", "near", "orthogonal", "zero", "opposite"]
    assert tags.select_tags(prompt, {}, 0.0) == []


def test_tempo_accuracy() -> None:
    assert tags.tempo_accuracy(103.0, 100.0, 0.04) == (True, True)
    assert tags.tempo_accuracy(199.0, 100.0, 0.04) == (False, True)
    assert tags.tempo_accuracy(34.0, 100.0, 0.04) == (False, True)
    assert tags.tempo_accuracy(150.0, 100.0, 0.04) == (False, False)


def test_score_tags_exact(cfg: tags.TagsConfig) -> None:
    rows = [
        ("a", "tempo", "120", 120.0),
        ("b", "tempo", "60", 60.0),
        ("a", "key", "A minor", 0.8),
        ("b", "key", "C major", 0.7),
        ("a", "genre", "pop", 1.0),
        ("a", "mood", "sleepy", 1.0),
    ]
    table = pd.DataFrame(rows, columns=["song_id", "family", "tag", "value"]).assign(source="x")
    tracks = pd.DataFrame(dict(song_id=["a", "b"], tempo_bpm=[120.0, 120.0], key=["A minor", "A minor"]))
    got = {r["metric"]: (r["value"], r["n"]) for r in tags.score_tags(table, tracks, cfg)}
    assert got["tempo_acc1"] == (0.5, 2) and got["tempo_acc2"] == (1.0, 2)
    assert got["key_acc"] == (0.5, 2)
    assert got["key_weighted"] == (pytest.approx(0.65), 2)  # exact 1.0, relative minor 0.3
    assert got["unknown_genre"] == (1.0, 2) and got["unknown_instrument"] == (2.0, 2)
    assert got["oov_tags"] == (1.0, 2)  # "sleepy" is not in the vocabulary


def test_broken_audio_becomes_rejection(tmp_path: Path, cfg: tags.TagsConfig) -> None:
    good = tmp_path / "good.flac"
    write_flac(good, kick_track(110.0, 6.0)[:, None], SR)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"not a flac file")
    tracks = pd.DataFrame([_track("good", good), _track("missing", tmp_path / "nope.flac"), _track("corrupt", corrupt)])
    table, quality, rejected = tags.run(tracks, cfg, workers=2)
    assert set(table["song_id"]) == {"good"}
    assert {(r["song_id"], r["step"], r["reason"]) for r in rejected} == {
        ("missing", "tags", "missing_audio"),
        ("corrupt", "tags", "analysis_failed"),
    }
    assert {"unknown_genre", "oov_tags"} <= {q["metric"] for q in quality}
