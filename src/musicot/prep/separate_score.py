"""Scoring separated stems against the corpus truth stems: plain SDR per stem.

SDR = 10 log10(|s|^2 / |s - ŝ|^2) over the whole song (no scale or filter allowance, unlike
BSSEval's SI-SDR/SDR variants), plus the median over 1 s chunks as in MUSDB's "median over
frames" convention, which is less dominated by a few loud passages. The valid and
reference splits are scored, each on its own: the trained separator has seen only the train
split, so both are songs from synth seeds it never saw. Truth stems are resampled to the
estimate's rate; a stem silent in the truth of a song has no defined SDR and is skipped for
that song.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from musicot.audio import read_audio, to_stereo
from musicot.data.table import STEMS
from musicot.prep.separate import STEP, read_at

SDR_CAP_DB = 100.0  # SDR of an exact estimate (zero error) instead of +inf
SILENT_RMS = 1e-4  # truth stems (or 1 s chunks of them) below -80 dBFS are skipped
SDR_CHUNK_S = 1.0  # chunk length of the per-song median SDR (MUSDB's "median over frames")
PER_SONG_COLUMNS = ["split", "song_id", "stem", "sdr", "sdr_chunk_median"]


def sdr(truth: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|s|^2 / |s - ŝ|^2) in dB over all samples, capped at +-SDR_CAP_DB."""
    num = float(np.sum(np.square(truth, dtype=np.float64)))
    den = float(np.sum(np.square(truth.astype(np.float64) - estimate)))
    if den == 0.0:
        return SDR_CAP_DB
    if num == 0.0:
        return -SDR_CAP_DB
    return float(np.clip(10 * np.log10(num / den), -SDR_CAP_DB, SDR_CAP_DB))


def chunk_median_sdr(truth: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    """Median SDR over SDR_CHUNK_S chunks whose truth is not silent (NaN when none is)."""
    hop = max(1, round(SDR_CHUNK_S * sr))
    values = [
        sdr(truth[i : i + hop], estimate[i : i + hop])
        for i in range(0, truth.shape[0], hop)
        if _rms(truth[i : i + hop]) >= SILENT_RMS
    ]
    return float(np.median(values)) if values else float("nan")


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def score_song(song_id: str, truth_dir: Path, est_dir: Path) -> list[dict]:
    """Per-stem SDR rows of one song; stems silent in the truth or not estimated are skipped."""
    rows = []
    for stem in STEMS:
        est_path, truth_path = est_dir / f"{stem}.flac", truth_dir / f"{stem}.flac"
        if not (est_path.exists() and truth_path.exists()):
            continue
        estimate, sr = read_audio(est_path)
        truth = read_at(truth_path, sr)
        n = min(len(truth), len(estimate))
        truth, estimate = truth[:n], to_stereo(estimate[:n])
        if _rms(truth) < SILENT_RMS:
            continue
        rows.append(
            {
                "song_id": song_id,
                "stem": stem,
                "sdr": sdr(truth, estimate),
                "sdr_chunk_median": chunk_median_sdr(truth, estimate, sr),
            }
        )
    return rows


SCORED_SPLITS = ("valid", "reference")  # neither trains the separator: songs from synth seeds it never saw


def score_separation(stems_dir: Path, tracks: pd.DataFrame, note: str = "") -> tuple[list[dict], pd.DataFrame]:
    """Quality rows and the per-song SDR table of the valid- and reference-split songs with truth stems.

    Quality metrics per stem and split: sdr_<stem> (mean over songs of the whole-song SDR) and
    sdr_frames_<stem> (median over songs of the per-song median over 1 s chunks, MUSDB style);
    sdr_mean is the mean of the sdr_<stem> values. The valid split's rows carry these names, the
    reference split's the same names prefixed `reference_`. A split without songs gives no rows.
    """
    rows = []
    for song in tracks[tracks["split"].isin(SCORED_SPLITS) & (tracks["stems_dir"] != "")].itertuples():
        if (stems_dir / song.song_id).is_dir():  # rejected songs have no folder
            rows += [
                {"split": song.split, **r}
                for r in score_song(song.song_id, Path(song.stems_dir), stems_dir / song.song_id)
            ]
    per_song = pd.DataFrame(rows, columns=PER_SONG_COLUMNS)
    quality = []
    for split in SCORED_SPLITS:
        part = per_song[per_song["split"] == split]
        if split == "valid" or len(part):
            prefix = "" if split == "valid" else f"{split}_"
            where = f"{split} split, {note}" if note else f"{split} split"
            quality += [{**q, "metric": prefix + q["metric"], "note": where} for q in _split_quality(part)]
    return [{"step": STEP, **q} for q in quality], per_song


def _split_quality(per_song: pd.DataFrame) -> list[dict]:
    rows, stem_sdrs = [], []
    for stem in STEMS:
        part = per_song[per_song["stem"] == stem]
        n = int(part["song_id"].nunique())
        mean = float(part["sdr"].mean()) if n else np.nan
        stem_sdrs += [mean] if n else []
        rows.append({"metric": f"sdr_{stem}", "value": mean, "n": n})
        frames = float(part["sdr_chunk_median"].median()) if n else np.nan
        rows.append({"metric": f"sdr_frames_{stem}", "value": frames, "n": n})
    mean_all = float(np.mean(stem_sdrs)) if stem_sdrs else np.nan
    rows.append({"metric": "sdr_mean", "value": mean_all, "n": int(per_song["song_id"].nunique())})
    return rows
