"""What the tokens know: per-frame truth labels, linear probes and codebook statistics.

Labels, one per token frame (its centre time): per stem, "is it playing" (the corpus stem_volume
RMS of the 0.5 s truth frame holding it above `active_fraction` of the stem's level, the
`level_quantile` of its train-split RMS), and "is it sung" (inside a timed lyric word). A frame
without truth (no volume row, a song with lyrics but no word times) is NaN and left out.

A probe is a logistic regression (sklearn, class-balanced, inputs standardised on train) fit on
train-split frames and scored by balanced accuracy (mean recall of both classes; chance 0.5
whatever the class balance) on valid-split frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from musicot.semantic.config import ProbeConfig

STEMS = ("vocals", "bass", "drums", "guitar", "piano")  # the paper's analyzability anchors
SUNG = "sung"
TARGETS = (*STEMS, SUNG)
FRAME_NORM_EPS = 1e-5  # Wav2Vec2BertConfig.layer_norm_eps, the encoder's own


def frame_times(n: int, frame_s: float) -> np.ndarray:
    """Centre time of each of `n` token frames."""
    return (np.arange(n) + 0.5) * frame_s


def stem_levels(volume: pd.DataFrame, train_songs: Sequence[str], quantile: float) -> dict[str, float]:
    """Per stem, the `quantile` of its truth-frame RMS over the train split (its "full" level)."""
    train = volume[volume["song_id"].astype(str).isin(set(train_songs))]
    levels = {}
    for stem in STEMS:
        rms = train.loc[train["stem"] == stem, "rms"].to_numpy(float)
        rms = rms[np.isfinite(rms)]
        levels[stem] = float(np.quantile(rms, quantile)) if len(rms) else float("nan")
    return levels


def stem_labels(song_volume: pd.DataFrame, times: np.ndarray, levels: Mapping[str, float], fraction: float) -> dict:
    """Per stem, (frames,) float 1/0 playing, NaN where the truth does not cover the frame."""
    out = {}
    for stem in STEMS:
        rows = song_volume[song_volume["stem"] == stem].sort_values("start")
        label = np.full(len(times), np.nan)
        level = levels.get(stem, float("nan"))
        if len(rows) and np.isfinite(level):
            starts, ends, rms = (rows[c].to_numpy(float) for c in ("start", "end", "rms"))
            i = np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(rows) - 1)
            covered = (times >= starts[i]) & (times < ends[i])
            label[covered] = (rms[i[covered]] > fraction * level).astype(float)
        out[stem] = label
    return out


def sung_labels(song_words: pd.DataFrame, times: np.ndarray, known: bool) -> np.ndarray:
    """(frames,) 1 inside a timed word, 0 elsewhere; all NaN when the song's singing is not known."""
    if not known:
        return np.full(len(times), np.nan)
    label = np.zeros(len(times))
    for start, end in zip(song_words["start"].to_numpy(float), song_words["end"].to_numpy(float), strict=True):
        label[(times >= start) & (times < end)] = 1.0
    return label


def frame_norm(rows: np.ndarray) -> np.ndarray:
    """Each row standardised over its features (a LayerNorm without the affine part)."""
    return (rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, keepdims=True) + FRAME_NORM_EPS)


def one_hot(tokens: np.ndarray, n_tokens: int) -> np.ndarray:
    out = np.zeros((len(tokens), n_tokens), np.float32)
    out[np.arange(len(tokens)), tokens.astype(np.int64)] = 1.0
    return out


def probe(
    x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, cfg: ProbeConfig
) -> float:
    """Balanced accuracy on valid of a logistic regression fit on train; NaN if either side lacks a class."""
    if len(np.unique(y_train)) < 2 or len(np.unique(y_valid)) < 2:
        return float("nan")
    # One BLAS/OpenMP thread: after torch has run, its OpenMP pool and numpy's BLAS threads fight over
    # the cores (measured on 2 cores: 17 s for four probes with the default pools, 0.4 s with one thread).
    with threadpool_limits(limits=1):
        scaler = StandardScaler().fit(x_train)
        clf = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter, class_weight="balanced")
        clf.fit(scaler.transform(x_train), y_train)
        return float(balanced_accuracy_score(y_valid, clf.predict(scaler.transform(x_valid))))


def codebook_stats(tokens: Sequence[np.ndarray], n_tokens: int) -> dict[str, float]:
    """Perplexity (exp entropy of the code histogram) and dead codes (never used) over `tokens`."""
    counts = np.bincount(np.concatenate(tokens).astype(np.int64), minlength=n_tokens) if tokens else np.zeros(n_tokens)
    total = counts.sum()
    p = counts[counts > 0] / max(total, 1)
    return {"perplexity": float(np.exp(-(p * np.log(p)).sum())), "dead_codes": float((counts == 0).sum())}
