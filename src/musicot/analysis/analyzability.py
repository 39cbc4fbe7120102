"""Analyzability of the musical thought (the paper's section 5.3), measured against stem volume.

A thought is decoded back into CLAP space (RVQ codes -> de-quantized window embeddings) and
compared with the text embedding of each anchor ("vocals", "bass", ...). If the thought is
analyzable, that similarity rises and falls with the anchor's stem volume. We report Pearson
r per anchor pooled over all windows of all songs, and the mean of per-song r, excluding
(song, stem) pairs whose mean volume is below `min_mean_volume` as the paper does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicot.audio import rms
from musicot.clap.data import ANCHORS  # the one list of anchor stems (CLAP captions, analysis, figures)
from musicot.metrics.correlation import pearson

RESULT_COLUMNS = ["anchor", "stems", "r_pooled", "r_per_song_mean", "n_windows", "n_songs", "n_excluded"]


def anchor_similarity(embeddings: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Cosine similarity (N windows, A anchors) between window and anchor text embeddings."""
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    a = anchors / np.linalg.norm(anchors, axis=1, keepdims=True).clip(1e-12)
    return e @ a.T


def window_volume_from_truth(volume: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """Per-window RMS of each stem from the corpus' per-frame RMS truth (frames overlapping the window).

    RMS of a window = sqrt(mean of squared frame RMS), weighted by frame overlap.
    """
    rows = []
    for song_id, song_windows in windows.groupby("song_id", sort=False):
        frames = volume[volume["song_id"] == song_id]
        for stem, f in frames.groupby("stem"):
            starts, ends, power = f["start"].to_numpy(), f["end"].to_numpy(), f["rms"].to_numpy() ** 2
            for w in song_windows.itertuples():
                overlap = (np.minimum(ends, w.end) - np.maximum(starts, w.start)).clip(0)
                value = np.sqrt((overlap * power).sum() / overlap.sum()) if overlap.sum() > 0 else 0.0
                rows.append(dict(song_id=song_id, window=w.window, stem=stem, rms=float(value)))
    return pd.DataFrame(rows)


def window_volume_from_audio(stems_dir: Path, windows: pd.DataFrame, stems: Sequence[str]) -> pd.DataFrame:
    """Per-window RMS of each stem read from separated (or any) stem files `<stems_dir>/<song>/<stem>.flac`."""
    rows = []
    for song_id, song_windows in windows.groupby("song_id", sort=False):
        for stem in stems:
            path = Path(stems_dir) / song_id / f"{stem}.flac"
            if not path.is_file():
                continue
            audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
            for w in song_windows.itertuples():
                segment = audio[int(w.start * sr) : int(w.end * sr)]
                rows.append(dict(song_id=song_id, window=w.window, stem=stem, rms=rms(segment)))
    return pd.DataFrame(rows)


def analyzability(
    windows: pd.DataFrame,
    similarity: np.ndarray,
    volume: pd.DataFrame,
    anchors: Sequence[str] = ANCHORS,
    min_mean_volume: float = 1e-2,
    label: str = "truth",
) -> pd.DataFrame:
    """Pearson r between each anchor's similarity and its stem's volume, pooled and per song.

    `windows` rows align with `similarity` rows (song_id, window); `volume` has song_id,
    window, stem, rms. A (song, stem) whose mean volume is below `min_mean_volume` is left out.
    """
    sims = windows[["song_id", "window"]].reset_index(drop=True)
    rows = []
    for a, anchor in enumerate(anchors):
        joined = sims.assign(sim=similarity[:, a]).merge(
            volume[volume["stem"] == anchor], on=["song_id", "window"], how="inner"
        )
        mean_volume = joined.groupby("song_id")["rms"].transform("mean")
        kept = joined[mean_volume >= min_mean_volume]
        per_song = [pearson(g["sim"].to_numpy(), g["rms"].to_numpy()) for _, g in kept.groupby("song_id")]
        rows.append(
            dict(
                anchor=anchor,
                stems=label,
                r_pooled=pearson(kept["sim"].to_numpy(), kept["rms"].to_numpy()),
                r_per_song_mean=float(np.nanmean(per_song)) if np.isfinite(per_song).any() else float("nan"),
                n_windows=len(kept),
                n_songs=kept["song_id"].nunique(),
                n_excluded=joined["song_id"].nunique() - kept["song_id"].nunique(),
            )
        )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)
