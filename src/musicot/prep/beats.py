"""Audio analysis the structure and tags steps share: mono loading, features, tempo, beats, worker pool.

Why a module of its own: both steps need a song's tempo and beat grid, and both pay librosa's numba
start-up cost, so the two concerns live in one place.

numba cost. Importing librosa's core compiles its eagerly-typed ufuncs; with an empty numba cache
that takes ~20 s per process (2 cores), with a warm on-disk cache ~1.5 s. numba persists the cache
next to librosa's sources (the venv's ``__pycache__``) or, when that is read-only, under
``~/.cache``; ``--numba-cache DIR`` (or the ``NUMBA_CACHE_DIR`` environment variable) moves it to
a folder of our choosing. ``python -m musicot.prep.beats --warm`` fills the cache once (e.g. at
``make setup``). The beat tracker below is plain numpy: importing librosa.beat compiles an uncached
ufunc every time (~2.4 s per process, measured here) that we never need. Workers are forked after `warm_up`, so they
inherit compiled code instead of paying for it again.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from musicot.audio import read_audio, resample

HOP_LENGTH = 512  # analysis hop in samples (23 ms at 22.05 kHz), librosa's default
N_FFT = 2048  # STFT size (93 ms at 22.05 kHz), librosa's default
N_MFCC = 20  # MFCCs kept (coefficient 0 is loudness; structure drops it)
MIN_BEATS = 4  # fewer tracked beats than this means no usable beat grid
TIGHTNESS = 100.0  # DP beat tracker: penalty weight for deviating from the tempo (Ellis 2007, librosa default)
BEAT_WINDOW_SHARPNESS = 32.0  # width of the local-score Gaussian is period / this (librosa's choice)
TRIM_FRACTION = 0.5  # leading/trailing beats weaker than this x RMS local score are dropped
FIRST_BEAT_FRACTION = 0.01  # no beat chain starts before the local score first exceeds this x its maximum
LAST_BEAT_FRACTION = 0.5  # the last beat is the last cumulative-score peak above this x the peaks' median
WARM_SECONDS = 2.0  # length of the synthetic signal warm_up analyses
REFINE_RANGE = 0.1  # tempo refinement searches +-10% around the tempogram's (coarse, lag-quantised) estimate
REFINE_MULTIPLES = 8  # ... scoring a period by the autocorrelation summed at its first 8 multiples
REFINE_STEPS = 400  # ... on a grid this fine

log = logging.getLogger("musicot.prep")
T = TypeVar("T")
R = TypeVar("R")


def configure_numba_cache(cache_dir: str | Path | None) -> None:
    """Point numba's on-disk cache at `cache_dir`; must run before librosa (hence numba) is imported."""
    if cache_dir is None:
        return
    path = Path(cache_dir).resolve()
    if "numba" in sys.modules and os.environ.get("NUMBA_CACHE_DIR") != str(path):
        raise RuntimeError("configure_numba_cache must run before librosa/numba are imported")
    path.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(path)


def load_mono(path: str | Path) -> tuple[np.ndarray, int]:
    """A file as float32 mono (channels averaged) at its own sample rate."""
    audio, sr = read_audio(path)
    if audio.shape[0] == 0:
        raise ValueError(f"{path} holds no samples")
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32), sr


@dataclass(frozen=True)
class SongFeatures:
    """Frame-level features of one song, all from one STFT (hop HOP_LENGTH), plus its tempo and beats."""

    sr: int
    duration_s: float
    onset: np.ndarray  # (frames,) spectral-flux onset strength
    tempo_bpm: float
    beats: np.ndarray  # beat frame indices
    chroma: np.ndarray  # (12, frames), C first
    mfcc: np.ndarray  # (N_MFCC, frames)
    rms: np.ndarray  # (frames,)

    @property
    def fps(self) -> float:
        return self.sr / HOP_LENGTH

    def beat_bounds(self) -> np.ndarray:
        """Frame indices that cut the song into beat-long spans (0, beats..., n_frames), for librosa.util.sync."""
        return np.unique(np.concatenate([[0], self.beats, [self.chroma.shape[1]]]))

    def frame_times(self, frames: np.ndarray) -> np.ndarray:
        """Seconds of frame indices, the last frame clamped to the song's end."""
        return np.minimum(np.asarray(frames) / self.fps, self.duration_s)


def analyse(y: np.ndarray, sr: int) -> SongFeatures:
    """Onset strength, tempo, beats, chroma, MFCC and RMS of mono audio `y` at rate `sr`.

    One magnitude STFT feeds every feature (mel for onsets and MFCC, chroma, RMS): the
    steps run this for every song, so the transform is computed once, not four times.
    """
    import librosa

    if len(y) < N_FFT or not np.any(y):
        raise ValueError("audio is silent or shorter than one analysis window")
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=mag**2, sr=sr))
    onset = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=HOP_LENGTH)
    tempo = estimate_tempo(onset, sr)
    beats = track_beats(onset, tempo, sr / HOP_LENGTH)
    if len(beats) < MIN_BEATS:  # beatless audio: fall back to a grid at the estimated tempo
        beats = np.arange(0, mag.shape[1], 60.0 * sr / HOP_LENGTH / tempo).astype(int)
    return SongFeatures(
        sr=sr,
        duration_s=len(y) / sr,
        onset=onset,
        tempo_bpm=tempo,
        beats=beats,
        chroma=librosa.feature.chroma_stft(S=mag**2, sr=sr, hop_length=HOP_LENGTH),
        mfcc=librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC),
        rms=librosa.feature.rms(S=mag, frame_length=N_FFT, hop_length=HOP_LENGTH)[0],
    )


def analyse_file(path: str | Path, sr: int) -> tuple[SongFeatures, np.ndarray, int]:
    """`analyse` of a file resampled to `sr`; also returns the file's own mono audio and rate."""
    mono, file_sr = load_mono(path)
    return analyse(resample(mono, file_sr, sr), sr), mono, file_sr


def estimate_tempo(oenv: np.ndarray, sr: int) -> float:
    """Global tempo in BPM: librosa's tempogram estimate (log-normal prior at 120), refined to sub-frame precision.

    The tempogram picks an integer autocorrelation lag, which at 43 frames/s is ~2.5% coarse at
    120 BPM: enough for tempo accuracy, but a beat grid built on it drifts by a beat within 40 s.
    The refinement sums the whole-song autocorrelation at the first REFINE_MULTIPLES multiples of
    each candidate period (interpolated) and keeps the best.
    """
    import librosa

    coarse = float(librosa.feature.tempo(onset_envelope=oenv, sr=sr, hop_length=HOP_LENGTH, aggregate=np.mean)[0])
    return refine_tempo(oenv, coarse, sr / HOP_LENGTH)


def refine_tempo(oenv: np.ndarray, bpm: float, fps: float) -> float:
    """The period near 60 * fps / bpm whose multiples line up best with the onset autocorrelation."""
    x = oenv - oenv.mean()
    n = len(x)
    if n < 2 or bpm <= 0:
        return bpm
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[:n]
    lag = 60.0 * fps / bpm
    cands = np.linspace(lag * (1 - REFINE_RANGE), lag * (1 + REFINE_RANGE), REFINE_STEPS)
    multiples = np.arange(1, REFINE_MULTIPLES + 1)
    score = np.interp(np.outer(cands, multiples), np.arange(n), ac, right=0.0).sum(axis=1)
    return float(60.0 * fps / cands[int(np.argmax(score))])


def track_beats(oenv: np.ndarray, bpm: float, fps: float) -> np.ndarray:
    """Beat frames by Ellis' dynamic program: onsets near a period apart, penalised off-tempo (numpy only)."""
    n = len(oenv)
    if n == 0 or bpm <= 0:
        return np.zeros(0, dtype=int)
    period = 60.0 * fps / bpm
    norm = oenv / (oenv.std(ddof=1) + np.finfo(float).tiny) if n > 1 else oenv.astype(float)
    half = max(1, round(period))
    window = np.exp(-0.5 * (np.arange(-half, half + 1) * BEAT_WINDOW_SHARPNESS / period) ** 2)
    local = np.convolve(norm, window, mode="same")

    # The previous beat lies between 2 periods and half a period back.
    offsets = np.arange(-round(2 * period), -round(period / 2) + 1)
    penalty = -TIGHTNESS * np.log(-offsets / period) ** 2
    cum = np.zeros(n)
    back = np.full(n, -1)
    first_threshold = FIRST_BEAT_FRACTION * local.max()  # until some beat scores, don't chain to silence
    started = False
    for t in range(n):
        prev = t + offsets
        ok = prev >= 0
        if started and ok.any():
            cand = cum[prev[ok]] + penalty[ok]
            j = int(np.argmax(cand))
            cum[t] = local[t] + cand[j]
            back[t] = prev[ok][j]
        else:
            cum[t] = local[t]
        started = started or local[t] > first_threshold

    # Last beat: the last local maximum of the cumulative score that is not weak.
    peaks = np.flatnonzero((cum[1:-1] > cum[:-2]) & (cum[1:-1] >= cum[2:])) + 1
    if len(peaks) == 0:
        return np.zeros(0, dtype=int)
    strong = peaks[cum[peaks] >= LAST_BEAT_FRACTION * np.median(cum[peaks])]
    beats = [int(strong[-1])]
    while back[beats[-1]] >= 0:
        beats.append(int(back[beats[-1]]))
    beats = np.array(beats[::-1])

    # Trim weak leading/trailing beats (fade in/out).
    threshold = TRIM_FRACTION * np.sqrt(np.mean(local[beats] ** 2))
    keep = np.flatnonzero(local[beats] >= threshold)
    return beats[keep[0] : keep[-1] + 1] if len(keep) else beats


def warm_up(sr: int) -> float:
    """Run every librosa path the steps use once on a short signal; returns the seconds it took.

    Compiles (or loads from the numba cache) librosa's kernels in this process, so forked workers
    start warm.
    """
    start = time.perf_counter()
    t = np.arange(int(WARM_SECONDS * sr)) / sr
    y = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    analyse(y, sr)
    return time.perf_counter() - start


_TASK: Callable[[Any], Any] | None = None  # the per-song function, inherited by forked workers (need not pickle)


def _run_task(item: Any) -> Any:
    assert _TASK is not None
    return _TASK(item)


def map_songs(fn: Callable[[T], R], items: Iterable[T], workers: int, sr: int) -> list[R]:
    """`fn` over `items` in order, on `workers` forked processes that inherit a warmed-up librosa.

    `fn` must catch its own per-song errors (and return them), so one bad song never stops a run.
    It reaches the workers by fork, not by pickling, so it may hold models or open handles.
    """
    global _TASK
    items = list(items)
    log.info("librosa warm-up took %.1f s", warm_up(sr))
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    _TASK = fn
    try:
        # fork, not spawn: a spawned worker would import librosa afresh and pay the start-up again.
        with multiprocessing.get_context("fork").Pool(min(workers, len(items))) as pool:
            return pool.map(_run_task, items, chunksize=1)
    finally:
        _TASK = None


def add_runtime_args(parser: argparse.ArgumentParser) -> None:
    """--workers and --numba-cache, shared by the step CLIs."""
    parser.add_argument("--workers", type=int, default=1, help="processes (forked after one warm-up)")
    parser.add_argument(
        "--numba-cache",
        default=None,
        help="persistent folder for numba's compiled-code cache (default: numba's own, or $NUMBA_CACHE_DIR)",
    )


def parse_step_args(argv: Sequence[str] | None, prog: str, description: str) -> argparse.Namespace:
    """Arguments of a librosa-based step CLI (structure, tags), with numba's cache and logging set up.

    The cache must be configured before librosa is imported, hence here and not in the step.
    """
    from musicot.prep.common import step_parser

    parser = step_parser(prog, description)
    add_runtime_args(parser)
    args = parser.parse_args(argv)
    configure_numba_cache(args.numba_cache)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return args


def log_step_time(step: str, n_songs: int, started: float) -> None:
    """One line with a step's total and per-song wall time."""
    seconds = time.perf_counter() - started
    log.info("%s: %d songs in %.1f s (%.2f s/song)", step, n_songs, seconds, seconds / max(1, n_songs))


def main(argv: list[str] | None = None) -> None:
    """``python -m musicot.prep.beats --warm [--numba-cache DIR]``: fill the numba cache once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", action="store_true", help="compile librosa's kernels into the numba cache")
    parser.add_argument("--sample-rate", type=int, default=22050)
    parser.add_argument("--numba-cache", default=None)
    args = parser.parse_args(argv)
    configure_numba_cache(args.numba_cache)
    if args.warm:
        seconds = warm_up(args.sample_rate)
        print(f"librosa warm-up {seconds:.1f} s (cache: {os.environ.get('NUMBA_CACHE_DIR', 'numba default')})")


if __name__ == "__main__":
    main()
