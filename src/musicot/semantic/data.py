"""The corpus as the semantic stage reads it: features of every song in memory, crops, masks and lyric lines.

Every random draw of training is a pure function of (seed, stream, step) (`step_rng`), never of
how many draws came before, so a run resumed at step k draws what an uninterrupted run drew there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.semantic.config import FeatureConfig
from musicot.semantic.features import Normaliser, file_features

log = logging.getLogger("musicot.semantic")

# Random streams: one per kind of draw, so adding one kind never shifts another.
SSL_STREAM, SSL_EVAL_STREAM, CTC_STREAM, KMEANS_STREAM, PROBE_STREAM = 1, 2, 3, 4, 5
VOCALS_STEM = "vocals.flac"


@dataclass
class Songs:
    """Stacked, normalised feature rows of some songs, keyed by song_id, with their split."""

    features: dict[str, np.ndarray]
    split: dict[str, str]

    def of_split(self, name: str) -> list[str]:
        return sorted(s for s, sp in self.split.items() if sp == name)


def load_songs(tracks: pd.DataFrame, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """Raw (unnormalised) stacked log-mel rows of every track's mix, read once."""
    out = {}
    for t in tracks.itertuples():
        out[str(t.song_id)] = file_features(str(t.audio_path), cfg)
    return out


def normalised_songs(tracks: pd.DataFrame, raw: Mapping[str, np.ndarray], normaliser: Normaliser) -> Songs:
    """`raw` features normalised, with each song's split from `tracks`."""
    split = dict(zip(tracks["song_id"].astype(str), tracks["split"].astype(str), strict=True))
    return Songs({s: normaliser(f) for s, f in raw.items()}, {s: split[s] for s in raw})


def crop_frames(songs: Sequence[np.ndarray], crop: int) -> int:
    """The crop length actually used: `crop`, or the shortest song when one is shorter (with a warning)."""
    shortest = min(len(f) for f in songs)
    if shortest < crop:
        log.warning(
            "semantic: the shortest song has %d frames, fewer than a %d-frame crop: crops shortened", shortest, crop
        )
    return min(crop, shortest)


def random_crops(songs: Sequence[np.ndarray], crop: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """(batch_size, crop, dim): crops of songs drawn uniformly, at uniform offsets (every song has >= crop rows)."""
    picks = rng.integers(len(songs), size=batch_size)
    out = []
    for i in picks:
        song = songs[int(i)]
        start = int(rng.integers(len(song) - crop + 1))
        out.append(song[start : start + crop])
    return np.stack(out)


def span_mask(shape: tuple[int, int], prob: float, span: int, rng: np.random.Generator) -> np.ndarray:
    """(batch, frames) bool: every frame starts a masked span of `span` frames with probability `prob`.

    BEST-RQ's masking (wav2vec 2.0's too); a row that drew no span gets one at a random start, so
    every row has frames to predict.
    """
    frames = shape[1]
    starts = rng.random(shape) < prob
    empty = ~starts.any(1)
    starts[np.flatnonzero(empty), rng.integers(max(1, frames - span + 1), size=int(empty.sum()))] = True
    mask = np.zeros(shape, dtype=bool)
    for offset in range(span):
        mask[:, offset:] |= starts[:, : frames - offset]
    return mask


# ---------------------------------------------------------------- lyric lines (CTC data)

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Lower case, single spaces: the text CTC learns to spell and CER is scored on."""
    return _SPACES.sub(" ", str(text).lower()).strip()


def timed_lines(lines: pd.DataFrame, song_ids: Iterable[str]) -> pd.DataFrame:
    """Lyric lines of `song_ids` with finite times and non-empty text (song_id, line, text, start, end)."""
    keep = lines[lines["song_id"].astype(str).isin(set(song_ids))].copy()
    keep["text"] = keep["text"].map(normalise_text)
    ok = np.isfinite(keep["start"].to_numpy(float)) & np.isfinite(keep["end"].to_numpy(float))
    ok &= (keep["end"] > keep["start"]).to_numpy() & (keep["text"].str.len() > 0).to_numpy()
    return keep[ok].sort_values(["song_id", "line"], ignore_index=True)


def line_span(start_s: float, end_s: float, context_s: float, frame_s: float, n_rows: int) -> tuple[int, int]:
    """Rows [a, b) of a song's features holding a lyric line plus `context_s` either side."""
    a = max(0, int(np.floor((start_s - context_s) / frame_s)))
    b = min(n_rows, int(np.ceil((end_s + context_s) / frame_s)))
    return a, max(b, a + 1)


def vocals_stem(stems_dir: str) -> Path | None:
    """The isolated vocals of a track when the corpus has them (the built-in corpus does)."""
    if not stems_dir:
        return None
    path = Path(stems_dir) / VOCALS_STEM
    return path if path.exists() else None
