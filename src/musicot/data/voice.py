"""A singing voice for the built-in procedural corpus: espeak-ng speaks, WORLD makes it sing.

The synthetic songs need vocals that sing real words on a melody with exact word timestamps, so that
lyric alignment and vocal-stem targets are known by construction. No singing synthesiser is freely
installable, so each word is spoken by espeak-ng, analysed with the WORLD vocoder (dio + stonemask,
cheaptrick, d4c) and resynthesised with the note's pitch (plus vibrato) and the note's duration: the
unvoiced consonant frames keep about their natural length and the voiced (vowel) frames are stretched
to fill the rest, as a singer would hold the vowel. Each word is then resampled, faded, levelled by its
velocity and placed at its start time; everything outside the word spans stays exactly zero.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

with warnings.catch_warnings():
    # pyworld imports pkg_resources, which warns about its own deprecation on every import
    warnings.simplefilter("ignore")
    import pyworld

# espeak-ng's native rate; WORLD analysis and synthesis run here and each word is resampled once.
WORLD_SR = 22050
# Leading/trailing espeak samples below this fraction of the word's peak count as silence.
TRIM_THRESHOLD = 0.02
# Fade at both ends of every sung word so that cut-offs do not click.
FADE_S = 0.005
# Vibrato depth ramps from 0 to full over this long once vibrato_onset_s has passed.
VIBRATO_FADE_S = 0.2
# Unvoiced (consonant) frames may take at most this share of a sung word; longer ones are compressed.
MAX_UNVOICED_SHARE = 0.5
# d4c dominates analysis time; aperiodicity varies slowly, so it is analysed on every AP_STEP-th frame
# and interpolated back (halves the per-word analysis cost, no audible or pitch difference).
AP_STEP = 2
# Floor for log-interpolating the spectral envelope (power spectrum, never exactly 0 from cheaptrick).
SP_FLOOR = 1e-16
# A time within this many samples of a sample boundary counts as on it (absorbs float noise in t * sr).
SAMPLE_TOLERANCE = 1e-6
A4_MIDI, A4_HZ, SEMITONES, CENTS_PER_OCTAVE = 69, 440.0, 12.0, 1200.0


@dataclass(frozen=True)
class VoiceConfig:
    male_voice: str = "en-us+m3"  # espeak-ng voice for gender "male"
    female_voice: str = "en-us+f3"  # espeak-ng voice for gender "female"
    speech_rate_wpm: int = 140  # espeak -s
    frame_period_ms: float = 5.0  # WORLD analysis frame period
    vibrato_rate_hz: float = 5.5
    vibrato_depth_cents: float = 30.0  # peak deviation from the note, in cents
    vibrato_onset_s: float = 0.15
    legato: float = 0.92  # fraction of the note's span that is sung
    word_rms: float = 0.1  # RMS of a word sung at velocity 1.0


@dataclass(frozen=True)
class SungWord:
    text: str  # one word, letters and apostrophes
    start: float  # seconds
    end: float  # seconds, > start
    pitch: int  # MIDI note number
    velocity: float  # 0..1


@dataclass(frozen=True)
class _Analysis:
    """WORLD parameters of one spoken word; frames along axis 0."""

    voiced: np.ndarray  # bool, (n_frames,)
    log_sp: np.ndarray  # log spectral envelope, (n_frames, fft_size // 2 + 1)
    ap: np.ndarray  # aperiodicity, same shape as sp


def _voice_for(gender: str, cfg: VoiceConfig) -> str:
    voices = {"male": cfg.male_voice, "female": cfg.female_voice}
    if gender not in voices:
        raise ValueError(f"gender must be one of {sorted(voices)}, got {gender!r}")
    return voices[gender]


def _speak(text: str, voice: str, cfg: VoiceConfig) -> np.ndarray:
    """espeak-ng's rendering of one word at WORLD_SR, leading/trailing silence trimmed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not on PATH; install it with `make setup` (apt-get install espeak-ng)")
    # Text goes through stdin so that no word can be taken for a command-line option.
    cmd = [exe, "-v", voice, "-s", str(cfg.speech_rate_wpm), "--stdout"]
    proc = subprocess.run(cmd, input=text.encode(), capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        stderr = proc.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"espeak-ng failed on word {text!r} (voice {voice}): {stderr}")
    x, sr = sf.read(io.BytesIO(proc.stdout), dtype="float64")
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != WORLD_SR:
        x = soxr.resample(x, sr, WORLD_SR)
    loud = np.flatnonzero(np.abs(x) > TRIM_THRESHOLD * np.max(np.abs(x), initial=0.0))
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced only silence for word {text!r} (voice {voice})")
    return x[loud[0] : loud[-1] + 1]


def _analyse(x: np.ndarray, cfg: VoiceConfig) -> _Analysis:
    # dio + stonemask is ~7x faster than harvest; its f0 only steers the envelope/aperiodicity analysis
    # and the voicing decision, the sung f0 comes from the note.
    f0, t = pyworld.dio(x, WORLD_SR, frame_period=cfg.frame_period_ms)
    f0 = pyworld.stonemask(x, f0, t, WORLD_SR)
    sp = pyworld.cheaptrick(x, f0, t, WORLD_SR)
    f0_c, t_c = np.ascontiguousarray(f0[::AP_STEP]), np.ascontiguousarray(t[::AP_STEP])
    ap = pyworld.d4c(x, f0_c, t_c, WORLD_SR, fft_size=2 * (sp.shape[1] - 1))
    ap = _interp_frames(ap, np.arange(f0.size) / AP_STEP)
    return _Analysis(voiced=f0 > 0, log_sp=np.log(np.maximum(sp, SP_FLOOR)), ap=ap)


def _source_positions(voiced: np.ndarray, n_out: int) -> np.ndarray:
    """For each output frame, the (fractional) source frame it is read from.

    Unvoiced frames keep unit duration (capped at MAX_UNVOICED_SHARE of the word) and voiced frames share
    the remaining time, so consonants sound natural and the vowel is held.
    """
    n_unv = float(np.count_nonzero(~voiced))
    n_voi = float(voiced.size) - n_unv
    if n_voi == 0:  # nothing to hold: stretch uniformly
        dur = np.full(voiced.size, n_out / voiced.size)
    else:
        unv_dur = min(1.0, MAX_UNVOICED_SHARE * n_out / n_unv) if n_unv else 0.0
        voi_dur = max(n_out - unv_dur * n_unv, 0.0) / n_voi
        dur = np.where(voiced, voi_dur, unv_dur)
    # Output time at which each source frame begins; map output frame centres back through it.
    edges = np.concatenate([[0.0], np.cumsum(dur)])
    centres = np.arange(n_out) + 0.5
    return np.interp(centres, edges, np.arange(voiced.size + 1.0)) - 0.5


def _interp_frames(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    pos = np.clip(pos, 0.0, a.shape[0] - 1.0)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, a.shape[0] - 1)
    w = (pos - lo)[:, None]
    return (1.0 - w) * a[lo] + w * a[hi]


def sing_word(ana: _Analysis, pitch: int, duration_s: float, sr: int, cfg: VoiceConfig) -> np.ndarray:
    """One analysed word sung at MIDI `pitch` for `duration_s` seconds, as float64 at `sr`, RMS 1."""
    fp_s = cfg.frame_period_ms / 1000.0
    n_frames = max(round(duration_s / fp_s), 1)
    pos = _source_positions(ana.voiced, n_frames)
    idx = np.clip(np.rint(pos).astype(int), 0, ana.voiced.size - 1)
    voiced = ana.voiced[idx]
    # Log-domain interpolation keeps formant peaks sharp instead of smearing two frames' energy.
    sp = np.exp(_interp_frames(ana.log_sp, pos))
    ap = np.clip(_interp_frames(ana.ap, pos), 0.0, 1.0)

    t = np.arange(n_frames) * fp_s
    ramp = np.clip((t - cfg.vibrato_onset_s) / VIBRATO_FADE_S, 0.0, 1.0)
    cents = cfg.vibrato_depth_cents * ramp * np.sin(2.0 * np.pi * cfg.vibrato_rate_hz * t)
    hz = A4_HZ * 2.0 ** ((pitch - A4_MIDI) / SEMITONES + cents / CENTS_PER_OCTAVE)
    f0 = np.where(voiced, hz, 0.0)

    y = pyworld.synthesize(f0, np.ascontiguousarray(sp), np.ascontiguousarray(ap), WORLD_SR, cfg.frame_period_ms)
    if sr != WORLD_SR:
        y = soxr.resample(y, WORLD_SR, sr)
    n = max(round(duration_s * sr), 1)
    y = np.pad(y[:n], (0, max(n - y.size, 0)))

    n_fade = min(round(FADE_S * sr), n // 2)
    if n_fade > 0:
        fade = np.linspace(0.0, 1.0, n_fade, endpoint=False)
        y[:n_fade] *= fade
        y[n - n_fade :] *= fade[::-1]
    rms = float(np.sqrt(np.mean(y**2)))
    return y / rms if rms > 0 else y


def _sample_at(t: float, sr: int) -> int:
    """First sample index whose time is >= t (tolerant to float noise in t * sr)."""
    return int(np.ceil(t * sr - SAMPLE_TOLERANCE))


def render_vocals(words: Sequence[SungWord], gender: str, sr: int, n_samples: int, cfg: VoiceConfig) -> np.ndarray:
    """Mono float32 array of exactly n_samples: every word sung at its note, silent (exactly 0.0) outside
    [start, end) of every word. Words running past n_samples are cut there."""
    voice = _voice_for(gender, cfg)
    out = np.zeros(n_samples, dtype=np.float64)
    # Choruses repeat words: speak and analyse each unique (word, voice) once per call.
    cache: dict[tuple[str, str], _Analysis] = {}
    for w in words:
        if w.end <= w.start:
            raise ValueError(f"word {w.text!r} has end {w.end} <= start {w.start}")
        i0 = max(_sample_at(w.start, sr), 0)
        i_end = min(_sample_at(w.end, sr), n_samples)
        sung_s = cfg.legato * (w.end - w.start)
        if i0 >= i_end or sung_s <= 0 or w.velocity <= 0:
            continue
        key = (w.text.lower(), voice)
        if key not in cache:
            cache[key] = _analyse(_speak(key[0], voice, cfg), cfg)
        y = sing_word(cache[key], w.pitch, sung_s, sr, cfg)
        n = min(y.size, i_end - i0)
        out[i0 : i0 + n] += y[:n] * (cfg.word_rms * min(w.velocity, 1.0))
    return out.astype(np.float32)
