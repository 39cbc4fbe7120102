"""Corpus audio at the acoustic stage's rate and channel count, and random training crops of it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from musicot.audio import resolve_corpus_path
from musicot.prep.common import load_tracks


def load_audio(path: str | Path, sample_rate: int, channels: int, max_seconds: float = 0.0) -> np.ndarray:
    """float32 (channels, samples) at `sample_rate`: mono files are duplicated for 2 channels, more channels
    downmixed for 1; `max_seconds` > 0 keeps only the start."""
    frames = -1
    if max_seconds > 0:
        frames = int(np.ceil(max_seconds * sf.info(str(path)).samplerate))
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True, frames=frames)
    if channels == 1:
        audio = audio.mean(axis=1, keepdims=True)
    elif audio.shape[1] == 1:
        audio = np.repeat(audio, channels, axis=1)
    elif audio.shape[1] != channels:
        raise ValueError(f"{path}: {audio.shape[1]} channels cannot be rendered as {channels}")
    if sr != sample_rate:
        audio = soxr.resample(audio, sr, sample_rate, quality="HQ")
    out = np.ascontiguousarray(audio.T, dtype=np.float32)
    if max_seconds > 0:
        out = out[:, : round(max_seconds * sample_rate)]
    return out


def load_split_audio(
    tracks_path: Path, splits: Sequence[str], sample_rate: int, channels: int
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The song table of `splits` and each song's audio (song_id -> (channels, samples))."""
    tracks = load_tracks(tracks_path, splits=splits)
    audio = {
        str(t.song_id): load_audio(resolve_corpus_path(t.audio_path, tracks_path), sample_rate, channels)
        for t in tracks.itertuples()
    }
    return tracks, audio


def random_crops(
    songs: Sequence[np.ndarray], length: int, batch_size: int, rng: np.random.Generator, hop: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`batch_size` crops of `length` columns from (channels, T) arrays, starts on multiples of `hop`.

    Returns (batch, channels, length) float32, the song index and the start column of each crop;
    songs shorter than `length` are zero-padded."""
    which = rng.integers(0, len(songs), size=batch_size)
    out, starts = [], []
    for i in which:
        song = songs[i]
        last = max(0, (song.shape[1] - length) // hop)
        start = int(rng.integers(0, last + 1)) * hop
        crop = song[:, start : start + length]
        if crop.shape[1] < length:
            crop = np.pad(crop, ((0, 0), (0, length - crop.shape[1])))
        out.append(crop)
        starts.append(start)
    return np.stack(out).astype(np.float32), which, np.asarray(starts)
