"""Tests for the espeak-ng + WORLD singing voice: real espeak, real WORLD, pitch checked with harvest."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from musicot.data import voice
from musicot.data.voice import SungWord, VoiceConfig, render_vocals

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pyworld

SR = 44100
FRAME_MS = 5.0


def _span(w: SungWord, sr: int = SR) -> tuple[int, int]:
    # Same rule as the module: samples whose time lies in [start, end).
    return math.ceil(w.start * sr - 1e-6), math.ceil(w.end * sr - 1e-6)


def _f0(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pyworld.harvest(y.astype(np.float64), SR, frame_period=FRAME_MS)


def _cents_errors(y: np.ndarray, words: list[SungWord], cfg: VoiceConfig, skip_s: float = 0.1) -> np.ndarray:
    f0, t = _f0(y)
    errs = []
    for w in words:
        sung_end = w.start + cfg.legato * (w.end - w.start)
        m = (t >= w.start + skip_s) & (t < sung_end) & (f0 > 0)
        assert m.sum() > 10, f"{w.text!r} barely voiced"
        target = 440.0 * 2.0 ** ((w.pitch - 69) / 12.0)
        errs.append(np.abs(1200.0 * np.log2(f0[m] / target)))
    return np.concatenate(errs)


def _melody(texts: list[str], pitches: list[int], note_s: float = 0.8, gap_s: float = 0.2) -> list[SungWord]:
    return [
        SungWord(text, 0.1 + i * (note_s + gap_s), 0.1 + i * (note_s + gap_s) + note_s, p, 0.8)
        for i, (text, p) in enumerate(zip(texts, pitches, strict=True))
    ]


def test_length_dtype_silence_outside_and_energy_inside() -> None:
    cfg = VoiceConfig()
    words = [
        SungWord("hello", 0.05, 0.45, 60, 0.9),
        SungWord("world", 0.6, 1.3, 62, 0.5),
        SungWord("don't", 1.3, 1.55, 64, 1.0),  # back-to-back with the previous word
        SungWord("stop", 1.9, 2.6, 57, 0.7),  # runs past n_samples: cut there
    ]
    n = int(2.2 * SR)
    y = render_vocals(words, "female", SR, n, cfg)
    assert y.shape == (n,) and y.dtype == np.float32
    assert np.all(np.isfinite(y))
    inside = np.zeros(n, dtype=bool)
    for w in words:
        i0, i1 = _span(w)
        inside[i0 : min(i1, n)] = True
        seg = y[i0 : min(i1, n)]
        assert np.sqrt(np.mean(seg.astype(np.float64) ** 2)) > 0.01, w.text
    assert np.all(y[~inside] == 0.0)


def test_level_follows_velocity_not_the_word() -> None:
    cfg = VoiceConfig()
    words = [SungWord("a", 0.0, 0.5, 60, 1.0), SungWord("strength", 0.6, 1.1, 60, 0.25)]
    y = render_vocals(words, "male", SR, int(1.2 * SR), cfg).astype(np.float64)
    for w in words:
        i0, _ = _span(w)
        sung = y[i0 : i0 + round(cfg.legato * (w.end - w.start) * SR)]
        rms = np.sqrt(np.mean(sung**2))
        assert rms == pytest.approx(cfg.word_rms * w.velocity, rel=0.02), w.text


@pytest.mark.parametrize(
    ("gender", "pitches"),
    [("male", [50, 57, 64]), ("female", [57, 64, 69])],
)
def test_sung_pitch_matches_the_notes(gender: str, pitches: list[int]) -> None:
    texts = ["love", "night", "away"]
    cfg = VoiceConfig()
    words = _melody(texts, pitches)
    y = render_vocals(words, gender, SR, int(3.2 * SR), cfg)
    # Default vibrato swings +-30 cents around the note, so the median error sits near 20 cents.
    assert np.median(_cents_errors(y, words, cfg)) < 50.0

    flat = VoiceConfig(vibrato_depth_cents=0.0)
    y_flat = render_vocals(words, gender, SR, int(3.2 * SR), flat)
    assert np.median(_cents_errors(y_flat, words, flat)) < 15.0


def test_vibrato_waits_for_onset_then_swings() -> None:
    cfg = VoiceConfig(vibrato_depth_cents=50.0, vibrato_onset_s=0.3)
    w = SungWord("moon", 0.0, 1.2, 57, 0.8)
    y = render_vocals([w], "male", SR, int(1.2 * SR), cfg)
    f0, t = _f0(y)
    cents = 1200.0 * np.log2(np.where(f0 > 0, f0, 1.0) / (440.0 * 2.0 ** ((57 - 69) / 12.0)))
    early = (t > 0.08) & (t < 0.28) & (f0 > 0)
    late = (t > 0.6) & (t < 1.0) & (f0 > 0)
    assert np.ptp(cents[early]) < 30.0
    assert np.ptp(cents[late]) > 60.0


def test_long_note_holds_the_vowel() -> None:
    cfg = VoiceConfig()
    # Consonant-heavy words: stretching every frame alike leaves these voiced for under half the note.
    words = [
        SungWord(text, 0.1 + 1.7 * i, 1.6 + 1.7 * i, 55, 0.8) for i, text in enumerate(["night", "stops", "scratch"])
    ]
    y = render_vocals(words, "male", SR, int(5.2 * SR), cfg)
    f0, t = _f0(y)
    for w in words:
        m = (t >= w.start) & (t < w.end)
        assert np.mean(f0[m] > 0) > 0.6, w.text


def test_deterministic_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_speak = voice._speak

    def counting_speak(text: str, voice_name: str, cfg: VoiceConfig) -> np.ndarray:
        calls.append(text)
        return real_speak(text, voice_name, cfg)

    monkeypatch.setattr(voice, "_speak", counting_speak)
    words = _melody(["la", "la", "La", "love", "la"], [60, 62, 64, 65, 67], note_s=0.3, gap_s=0.05)
    a = render_vocals(words, "female", SR, int(2.0 * SR), VoiceConfig())
    assert sorted(calls) == ["la", "love"]
    b = render_vocals(words, "female", SR, int(2.0 * SR), VoiceConfig())
    assert np.array_equal(a, b)


def test_bad_gender_raises() -> None:
    with pytest.raises(ValueError, match=r"female.*male"):
        render_vocals([SungWord("hi", 0.0, 0.5, 60, 1.0)], "robot", SR, SR, VoiceConfig())


def test_missing_espeak_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="make setup"):
        render_vocals([SungWord("hi", 0.0, 0.5, 60, 1.0)], "male", SR, SR, VoiceConfig())


def test_espeak_failure_names_the_word() -> None:
    cfg = VoiceConfig(male_voice="nosuchvoice")
    with pytest.raises(RuntimeError, match=r"'hi'.*does not exist"):
        render_vocals([SungWord("hi", 0.0, 0.5, 60, 1.0)], "male", SR, SR, cfg)
