"""Tests for silero-vad activity: real espeak-ng speech placed in noise, exact frame scoring, rejections."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from musicot.config import build, validate
from musicot.data.table import LINE_COLUMNS, TRACK_COLUMNS, WORD_COLUMNS, frame
from musicot.prep import vad

SR = vad.VAD_SR
NOISE_LEVEL = 0.003  # about -50 dBFS of white noise between the phrases
PHRASES = [(1.0, "the quick brown fox jumps over the lazy dog"), (6.0, "she sells sea shells by the sea shore")]
DURATION_S = 10.0
STEM_SR = 22050  # the stem is written at another rate so the resampling path is exercised


def _espeak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    y, sr = sf.read(str(path), dtype="float32")
    return soxr.resample(y, sr, SR)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """10 s of 16 kHz audio: two espeak phrases in faint noise, and where speech really is."""
    tmp = tmp_path_factory.mktemp("espeak")
    audio = np.random.default_rng(0).normal(0.0, NOISE_LEVEL, int(DURATION_S * SR)).astype(np.float32)
    truth = []
    for i, (at, text) in enumerate(PHRASES):
        y = _espeak(text, tmp / f"p{i}.wav")
        voiced = np.flatnonzero(np.abs(y) > 0.02 * np.abs(y).max())  # espeak pads with its own silence
        y = y[voiced[0] : voiced[-1] + 1]
        start = int(at * SR)
        audio[start : start + len(y)] += 0.5 * y / np.abs(y).max()
        truth.append((at, at + len(y) / SR))
    assert truth[0][1] < PHRASES[1][0] - 1.0, "phrases must leave silence between them"
    return audio, truth


@pytest.fixture(scope="module")
def cfg() -> vad.VadConfig:
    return build(vad.VadConfig, validate({})["prep"]["vad"])


@pytest.fixture(scope="module")
def model():
    return vad.load_model()


def test_config_matches_schema(cfg: vad.VadConfig) -> None:
    assert cfg.input == "separated" and 0 < cfg.threshold < 1


def test_regions_cover_speech_not_silence(speech, cfg, model) -> None:
    audio, truth = speech
    [regions] = vad.detect_batch(model, [audio], cfg)
    assert regions, "no speech found"
    scores = vad.prf(*vad.frame_counts(regions, truth, DURATION_S))
    assert scores["recall"] > 0.9, (regions, truth)
    assert scores["precision"] > 0.8, (regions, truth)
    # The leading second and the pause between phrases stay inactive.
    active = vad.frame_activity(regions, DURATION_S)
    assert not active[: int(0.8 / vad.FRAME_S)].any()
    gap = slice(int((truth[0][1] + 0.5) / vad.FRAME_S), int((truth[1][0] - 0.5) / vad.FRAME_S))
    assert not active[gap].any()


def test_batched_forward_matches_get_speech_timestamps(speech, cfg, model) -> None:
    """Our padded batch forward gives silero's own per-window loop results (within one window)."""
    import torch
    from silero_vad import get_speech_timestamps

    audio, _ = speech
    shorter = audio[: int(7.5 * SR)]  # padded inside the batch
    batched = vad.detect_batch(model, [audio, shorter], cfg)
    for signal, regions in zip([audio, shorter], batched, strict=True):
        with vad.torch_threads(vad.TORCH_THREADS):
            ref = get_speech_timestamps(
                torch.from_numpy(signal),
                model,
                threshold=cfg.threshold,
                min_speech_duration_ms=cfg.min_speech_ms,
                min_silence_duration_ms=cfg.min_silence_ms,
                speech_pad_ms=cfg.speech_pad_ms,
            )
        expected = [(r["start"] / SR, r["end"] / SR) for r in ref]
        assert len(regions) == len(expected)
        np.testing.assert_allclose(np.array(regions), np.array(expected), atol=vad.WINDOW / SR)


def test_frame_scores_exact() -> None:
    # 1 s = 100 frames; truth frames 10..49, prediction frames 30..69 -> 20 hits, 20 false, 20 missed.
    assert vad.frame_counts([(0.3, 0.7)], [(0.1, 0.5)], 1.0) == (20, 20, 20)
    assert vad.prf(20, 20, 20) == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    # Overlapping truth intervals are a union; a prediction past the end is clipped to the song.
    assert vad.frame_counts([(0.0, 2.0)], [(0.1, 0.3), (0.2, 0.4)], 1.0) == (30, 70, 0)
    # A frame counts when its centre is inside [start, end): 0.005 is frame 0's centre, 0.015 frame 1's.
    assert vad.frame_activity([(0.005, 0.015)], 0.05).tolist() == [True, False, False, False, False]
    assert vad.frame_activity([(0.006, 0.016)], 0.05).tolist() == [False, True, False, False, False]
    # 0.1 / 0.01 is 9.999999999999998 in floats: must still give 10 frames.
    assert vad.frame_activity([], 0.1).size == 10
    empty = vad.prf(*vad.frame_counts([], [(0.1, 0.2)], 1.0))
    assert math.isnan(empty["precision"]) and empty["recall"] == 0.0 and empty["f1"] == 0.0
    assert vad.prf(3, 1, 2) == pytest.approx({"precision": 0.75, "recall": 0.6, "f1": 6 / 9})


def test_plan_batches_respects_budget() -> None:
    durations = {"a": 10.0, "b": 30.0, "c": 20.0, "d": 40.0}
    assert vad.plan_batches(durations, budget_s=90.0) == [["a", "c", "b"], ["d"]]  # 3 x 30 s fits, 4 x 40 s not
    assert vad.plan_batches(durations, budget_s=60.0) == [["a", "c"], ["b"], ["d"]]
    assert vad.plan_batches(durations, budget_s=1.0) == [["a"], ["c"], ["b"], ["d"]]


def _corpus(root: Path, speech_audio: np.ndarray, truth: list[tuple[float, float]]) -> tuple[Path, Path]:
    """A two-song corpus: 'sung' has stems (true and separated), 'lost' has no separated stem."""
    corpus, stems = root / "corpus", root / "stems"
    stereo = np.repeat(soxr.resample(speech_audio, SR, STEM_SR)[:, None], 2, axis=1)
    for folder in (corpus / "audio" / "sung", stems / "sung"):
        folder.mkdir(parents=True)
        sf.write(str(folder / "vocals.flac"), np.clip(stereo, -1, 1), STEM_SR, subtype="PCM_16")
    sf.write(str(corpus / "audio" / "sung" / "mix.flac"), np.clip(stereo, -1, 1), STEM_SR, subtype="PCM_16")
    base = {c: "" for c, t in TRACK_COLUMNS.items() if t == "string"}
    numbers = {"sample_rate": STEM_SR, "channels": 2, "tempo_bpm": float("nan"), "gain_db": 0.0}
    tracks = [
        {**base, **numbers, "song_id": s, "split": "valid", "duration_s": DURATION_S, "lyrics_timed": True}
        for s in ("sung", "lost")
    ]
    tracks[0].update(audio_path=str(corpus / "audio" / "sung" / "mix.flac"), stems_dir=str(corpus / "audio" / "sung"))
    tracks_path = corpus / "tracks.parquet"
    frame(tracks, TRACK_COLUMNS).to_parquet(tracks_path)
    words = [
        {"song_id": s, "line": i, "word_index": 0, "word": "x", "start": a, "end": b, "pitch": 60}
        for s in ("sung", "lost")
        for i, (a, b) in enumerate(truth)
    ]
    frame(words, WORD_COLUMNS).to_parquet(corpus / "lyric_words.parquet")
    frame([], LINE_COLUMNS).to_parquet(corpus / "lyric_lines.parquet")
    return tracks_path, stems


def test_cli_end_to_end_with_rejection(tmp_path: Path, speech) -> None:
    tracks_path, stems = _corpus(tmp_path, *speech)
    out = tmp_path / "out"
    code = vad.main(
        [
            "--config",
            json.dumps({"prep": {"vad": {"input": "separated"}}}),
            "--tracks",
            str(tracks_path),
            "--stems",
            str(stems),
            "--out",
            str(out / "vad.parquet"),
            "--quality",
            str(out / "q.csv"),
            "--rejected",
            str(out / "r.tsv"),
            "--threads",
            "2",
        ]
    )
    assert code == 0
    table = pd.read_parquet(out / "vad.parquet")
    assert list(table.columns) == list(vad.VAD_COLUMNS)
    assert set(table["song_id"]) == {"sung"} and (table["end"] > table["start"]).all()
    rejected = pd.read_csv(out / "r.tsv", sep="\t")
    assert rejected[["song_id", "step", "reason"]].values.tolist() == [["lost", "vad", "missing_audio"]]
    quality = pd.read_csv(out / "q.csv").set_index("metric")
    assert quality.loc["f1", "n"] == 1 and quality.loc["f1", "value"] > 0.85
    assert "input=separated" in quality.loc["f1", "note"]
    # The true stem is the same audio here, so both variants agree.
    assert quality.loc["truth_stem_f1", "value"] == pytest.approx(quality.loc["f1", "value"], abs=0.02)
    assert quality.loc["songs_rejected", "value"] == 1


def test_mix_input_needs_no_stems(tmp_path: Path, speech, cfg) -> None:
    tracks_path, _ = _corpus(tmp_path, *speech)
    mix_cfg = build(vad.VadConfig, {**cfg.__dict__, "input": "mix"})
    table, quality, rejected = vad.run(mix_cfg, tracks_path, None, truth_stem=False)
    assert set(table["song_id"]) == {"sung"}
    assert [r["reason"] for r in rejected] == ["missing_audio"]  # 'lost' has no mix either
    assert {q["metric"] for q in quality} == {"precision", "recall", "f1", "songs_rejected"}
    with pytest.raises(ValueError, match="no stems folder"):
        vad.run(cfg, tracks_path, None)
