"""Vocal activity detection with silero-vad, scored frame by frame against the sung-word truth.

The paper marks where vocals are active by running silero-vad on the separated vocal stem.
We do the same on 16 kHz mono audio (soundfile + soxr; no torchaudio). Instead of calling
``get_speech_timestamps`` once per song, which steps the model one 32 ms window at a time from
Python, we run the model's own TorchScript ``audio_forward`` on a padded *batch* of songs and
hand each song's probabilities to ``get_speech_timestamps_from_probs``, the second half of
``get_speech_timestamps``: the same regions, about ten times faster (tests check they agree).

Scoring: 10 ms frames, a frame is active when its centre lies in a region; predicted activity
is compared with the union of the sung word intervals (``lyric_words``) of every song that has
them, in all splits (VAD is not trained, so there is nothing to hold out). Optionally the same
VAD is run on the corpus' true vocal stem, which separates VAD errors from separation errors.

Run as ``python -m musicot.prep.vad --config CFG --tracks TRACKS --stems STEMS_DIR --out OUT
--quality CSV --rejected TSV --threads N``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr
import torch

from musicot.config import build, load_config
from musicot.data.table import frame
from musicot.prep.common import load_tracks, load_truth, step_parser, write_step_outputs

STEP = "vad"
VAD_SR = 16000  # silero-vad's native rate
WINDOW = 512  # samples per silero-vad probability at 16 kHz
FRAME_S = 0.01  # scoring frame
# Padded audio per forward pass: one hour at 16 kHz is 230 MB of float32 (the default corpus is one batch).
BATCH_AUDIO_S = 3600.0
# silero's per-window ops are tiny: intra-op threads only add synchronisation (2 threads measured
# 1.5-10x slower than 1 on a 2-core machine), so the thread budget goes to decoding instead.
TORCH_THREADS = 1
VOCAL_STEM = "vocals.flac"
VAD_COLUMNS = {"song_id": "string", "start": "float64", "end": "float64"}
# Rounding before ceil() so 4.27 / 0.01 = 426.99999... lands on the intended frame.
_FRAME_DECIMALS = 9

log = logging.getLogger("musicot.prep.vad")
Intervals = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class VadConfig:
    """prep.vad of the config schema (descriptions and defaults live there)."""

    input: str
    threshold: float
    min_speech_ms: int
    min_silence_ms: int
    speech_pad_ms: int


def read_mono(path: str | Path, sr: int = VAD_SR) -> np.ndarray:
    """A file as float32 mono at `sr`: channel mean, then soxr resampling."""
    data, sr_in = sf.read(str(path), dtype="float32", always_2d=True)
    # Column sums, not data.mean(axis=1): numpy's strided row reduction was 10x slower than decoding.
    mono = data[:, 0].copy()
    for channel in range(1, data.shape[1]):
        mono += data[:, channel]
    mono /= data.shape[1]
    if sr_in != sr:
        mono = soxr.resample(mono, sr_in, sr, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch intra-op threads, restoring the previous count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_model() -> torch.jit.ScriptModule:
    """The packaged silero-vad TorchScript model (never downloads)."""
    before = torch.get_num_threads()
    with warnings.catch_warnings():  # importlib.resources / torch.jit.load deprecations inside silero_vad
        warnings.simplefilter("ignore", DeprecationWarning)
        from silero_vad import load_silero_vad  # sets torch to one thread, process-wide, on import

        model = load_silero_vad()
    torch.set_num_threads(before)
    return model


def regions_from_probs(probs: np.ndarray, n_samples: int, cfg: VadConfig) -> list[tuple[float, float]]:
    """Active regions in seconds from one song's window probabilities (silero's own post-processing)."""
    from silero_vad import get_speech_timestamps_from_probs

    stamps = get_speech_timestamps_from_probs(
        [float(p) for p in probs],
        sampling_rate=VAD_SR,
        threshold=cfg.threshold,
        min_speech_duration_ms=cfg.min_speech_ms,
        min_silence_duration_ms=cfg.min_silence_ms,
        speech_pad_ms=cfg.speech_pad_ms,
        audio_length_samples=n_samples,
    )
    # Samples, not return_seconds: silero rounds seconds to 0.1 s.
    return [(s["start"] / VAD_SR, s["end"] / VAD_SR) for s in stamps]


def detect_batch(model: torch.jit.ScriptModule, audios: Sequence[np.ndarray], cfg: VadConfig) -> list[list]:
    """Regions for several 16 kHz mono signals in one padded forward pass (states are per row)."""
    if not audios:
        return []
    length = max(max(len(a) for a in audios), WINDOW)
    batch = np.zeros((len(audios), length), dtype=np.float32)
    for i, a in enumerate(audios):
        batch[i, : len(a)] = a
    # No profiling executor: it re-optimises for every new batch shape, which cost seconds per call.
    with torch.inference_mode(), torch.jit.optimized_execution(False), torch_threads(TORCH_THREADS):
        probs = model.audio_forward(torch.from_numpy(batch), VAD_SR).numpy()
    # Padding only follows a song, so its own windows are unaffected; drop the padded ones.
    return [regions_from_probs(probs[i, : math.ceil(len(a) / WINDOW)], len(a), cfg) for i, a in enumerate(audios)]


def plan_batches(durations: Mapping[str, float], budget_s: float = BATCH_AUDIO_S) -> list[list[str]]:
    """Song ids grouped shortest first so that songs x longest song stays within `budget_s` of audio."""
    batches: list[list[str]] = [[]]
    for song_id in sorted(durations, key=lambda s: (durations[s], s)):
        if batches[-1] and (len(batches[-1]) + 1) * durations[song_id] > budget_s:
            batches.append([])
        batches[-1].append(song_id)
    return [b for b in batches if b]


def _load(path: Path | str) -> np.ndarray | tuple[str, str]:
    """Decoded audio, or (reason, detail) when the file is missing or unreadable."""
    if not Path(path).is_file():
        return ("missing_audio", f"{path} does not exist")
    try:
        return read_mono(path)
    except Exception as exc:  # any unreadable file becomes a rejection, not a crash
        return ("unreadable_audio", f"{path}: {type(exc).__name__}: {exc}")


def detect_files(
    model: torch.jit.ScriptModule,
    paths: Mapping[str, Path | str],
    durations: Mapping[str, float],
    cfg: VadConfig,
    threads: int = 1,
) -> tuple[dict[str, list], dict[str, tuple[str, str]]]:
    """Regions per song id for {song_id: audio path}, plus {song_id: (reason, detail)} for failures.

    `durations` (seconds, e.g. tracks.duration_s) only plans the batches; `threads` threads
    decode each batch (libsndfile and soxr release the GIL).
    """
    regions: dict[str, list] = {}
    errors: dict[str, tuple[str, str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for ids in plan_batches({s: durations[s] for s in paths}):
            loaded = dict(zip(ids, pool.map(_load, [paths[s] for s in ids]), strict=True))
            ok = [s for s in ids if isinstance(loaded[s], np.ndarray)]
            errors.update({s: loaded[s] for s in ids if not isinstance(loaded[s], np.ndarray)})
            regions.update(zip(ok, detect_batch(model, [loaded[s] for s in ok], cfg), strict=True))
    return regions, errors


def frame_activity(intervals: Intervals, duration_s: float, frame_s: float = FRAME_S) -> np.ndarray:
    """Boolean per frame of `frame_s` over [0, duration_s): frame k is active when its centre is in [start, end)."""
    n = max(0, math.ceil(round(duration_s / frame_s, _FRAME_DECIMALS)))
    active = np.zeros(n, dtype=bool)
    for start, end in intervals:
        lo = math.ceil(round(start / frame_s - 0.5, _FRAME_DECIMALS))
        hi = math.ceil(round(end / frame_s - 0.5, _FRAME_DECIMALS))
        active[max(lo, 0) : max(min(hi, n), 0)] = True
    return active


def frame_counts(pred: Intervals, truth: Intervals, duration_s: float) -> tuple[int, int, int]:
    """(true positive, false positive, false negative) frame counts of one song."""
    p, t = frame_activity(pred, duration_s), frame_activity(truth, duration_s)
    return int(np.sum(p & t)), int(np.sum(p & ~t)), int(np.sum(~p & t))


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall, F1; NaN where the denominator is zero (nothing predicted / nothing true)."""
    nan = float("nan")
    return {
        "precision": tp / (tp + fp) if tp + fp else nan,
        "recall": tp / (tp + fn) if tp + fn else nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan,
    }


def score(regions: Mapping[str, Intervals], words: pd.DataFrame, durations: Mapping[str, float]) -> dict:
    """Micro-averaged frame P/R/F1 over the songs in `regions` that have word truth; adds n (songs)."""
    truth = {s: list(zip(g["start"], g["end"], strict=True)) for s, g in words.groupby("song_id")}
    totals = np.zeros(3, dtype=np.int64)
    scored = [s for s in regions if s in truth]
    for song_id in scored:
        totals += frame_counts(regions[song_id], truth[song_id], durations[song_id])
    return {**prf(*map(int, totals)), "n": len(scored)}


def input_paths(tracks: pd.DataFrame, source: str, stems_dir: Path | str | None) -> dict[str, Path]:
    """Audio to run VAD on per song: separated stem, mix, or (source "truth") the corpus' own vocal stem."""
    if source == "separated":
        if stems_dir is None:
            raise ValueError("prep.vad.input is 'separated' but no stems folder was given")
        return {s: Path(stems_dir) / s / VOCAL_STEM for s in tracks["song_id"]}
    if source == "mix":
        return dict(zip(tracks["song_id"], map(Path, tracks["audio_path"]), strict=True))
    if source == "truth":
        has = tracks[tracks["stems_dir"] != ""]
        return {s: Path(d) / VOCAL_STEM for s, d in zip(has["song_id"], has["stems_dir"], strict=True)}
    raise ValueError(f"unknown VAD input {source!r}")


def _quality_rows(result: dict, prefix: str, note: str) -> list[dict]:
    return [
        {"step": STEP, "metric": prefix + m, "value": result[m], "n": result["n"], "note": note}
        for m in ("precision", "recall", "f1")
    ]


def run(
    cfg: VadConfig,
    tracks_path: Path | str,
    stems_dir: Path | str | None,
    threads: int = 1,
    truth_stem: bool = True,
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """VAD over every song of the corpus: (regions table, quality rows, rejection rows)."""
    tracks = load_tracks(tracks_path)
    durations = dict(zip(tracks["song_id"], tracks["duration_s"], strict=True))
    paths = input_paths(tracks, cfg.input, stems_dir)
    model = load_model()
    started = time.perf_counter()
    regions, errors = detect_files(model, paths, durations, cfg, threads)
    log.info("VAD (%s) on %d songs in %.1f s", cfg.input, len(regions), time.perf_counter() - started)
    rejected = [{"song_id": s, "step": STEP, "reason": r, "detail": d} for s, (r, d) in sorted(errors.items())]
    rows = [{"song_id": s, "start": a, "end": b} for s in sorted(regions) for a, b in regions[s]]
    table = frame(rows, VAD_COLUMNS)

    words = load_truth(tracks_path, "lyric_words")
    frame_note = f"{FRAME_S * 1000:g} ms frames vs union of sung word intervals, micro-averaged, all splits"
    quality = _quality_rows(score(regions, words, durations), "", f"input={cfg.input}; {frame_note}")
    if truth_stem:
        with_truth = set(words["song_id"])
        truth_paths = {s: p for s, p in input_paths(tracks, "truth", None).items() if s in with_truth}
        if truth_paths:  # corpora from folders or manifests have no true stems
            started = time.perf_counter()
            truth_regions, _ = detect_files(model, truth_paths, durations, cfg, threads)
            log.info("VAD on %d true vocal stems in %.1f s", len(truth_regions), time.perf_counter() - started)
            note = f"input=corpus true vocal stem (no separation); {frame_note}"
            quality += _quality_rows(score(truth_regions, words, durations), "truth_stem_", note)
    quality.append({"step": STEP, "metric": "songs_rejected", "value": len(rejected), "n": len(tracks), "note": ""})
    return table, quality, rejected


def _parser() -> argparse.ArgumentParser:
    p = step_parser("python -m musicot.prep.vad", __doc__.splitlines()[0])
    p.add_argument("--stems", type=Path, help="folder of <song_id>/vocals.flac (needed for input 'separated')")
    p.add_argument("--threads", type=int, default=1, help="decoding threads (silero itself runs on one torch thread)")
    p.add_argument("--no-truth-stem", action="store_true", help="skip scoring VAD on the corpus' true vocal stems")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the quality rows."""
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = build(VadConfig, load_config(a.config)["prep"]["vad"])
    started = time.perf_counter()
    table, quality, rejected = run(cfg, a.tracks, a.stems, a.threads, truth_stem=not a.no_truth_stem)
    write_step_outputs(a, table, quality, rejected)
    log.info("%d regions for %d songs in %.1f s", len(table), table["song_id"].nunique(), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
