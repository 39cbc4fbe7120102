"""10 s windows of the corpus and their captions, written from the stem truth of each window.

A window's caption names the stems whose mean RMS over the window (corpus ``stem_volume``,
one value per 0.5 s frame) exceeds ``active_rms``, in `ANCHORS` order, says "no vocals" when
vocals are silent, and adds the song's genre and mood, e.g.
``"vocals, drums and bass. funk, dark."`` or ``"drums and piano; no vocals. jazz, calm."``.
Training draws windows with a random shift around each window start (the caption is rewritten
from the truth of the shifted span) and a random gain: cheap augmentation that keeps the text
true. (`caption` can also shuffle stem order and drop genre/mood when given an rng; on the
built-in corpus at 60 steps that lowered valid recall, 0.26 -> 0.11 @1, so training does not use it.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from musicot.data.table import STEMS

log = logging.getLogger("musicot.clap")

ANCHORS = ("vocals", "bass", "drums", "guitar", "piano")  # the stems CLAP anchors are written for
WINDOW_COLUMNS = {"song_id": "string", "window": "int64", "start": "float64", "end": "float64", "split": "string"}


def window_starts(duration_s: float, window_s: float, hop_s: float) -> np.ndarray:
    """Starts of every `window_s` window at `hop_s` hop that fits in the song; [0] for a shorter song."""
    if duration_s <= window_s:
        return np.zeros(1)
    n = int(np.floor((duration_s - window_s) / hop_s + 1e-9)) + 1
    return np.arange(n) * hop_s


def join_words(words: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def caption(active: Mapping[str, bool], genre: str = "", mood: str = "", rng: np.random.Generator | None = None) -> str:
    """Caption of a window from which anchor stems are active plus the song's genre and mood.

    With `rng` (training only) the stems come in random order and genre/mood are left out half
    of the time, so the text tower learns each stem word rather than one fixed phrase.
    """
    present = [s for s in ANCHORS if active.get(s, False)]
    if rng is not None:
        present = [present[i] for i in rng.permutation(len(present))]
        if rng.random() < 0.5:
            genre, mood = "", ""
    text = join_words(present) if present else "no lead instruments"
    if not active.get("vocals", False):
        text += "; no vocals"
    style = [str(v).strip().lower() for v in (genre, mood) if str(v or "").strip().lower() not in ("", "unknown")]
    return text + "." + (f" {', '.join(style)}." if style else "")


@dataclass
class SongTruth:
    """Per-stem RMS frames of one song (frames x STEMS), for window activity at any start."""

    frame_s: float
    rms: np.ndarray  # (n_frames, len(STEMS)); NaN when a stem has no truth

    def mean_rms(self, start: float, end: float) -> dict[str, float]:
        """Mean RMS per stem of the frames overlapping [start, end)."""
        if not len(self.rms):
            return {s: float("nan") for s in STEMS}
        a = int(np.floor(start / self.frame_s))
        b = max(a + 1, int(np.ceil(end / self.frame_s)))
        seg = self.rms[min(a, len(self.rms) - 1) : b]
        return {
            s: float(np.nanmean(seg[:, i])) if np.isfinite(seg[:, i]).any() else float("nan")
            for i, s in enumerate(STEMS)
        }

    def active(self, start: float, end: float, threshold: float) -> dict[str, bool]:
        return {s: bool(v > threshold) for s, v in self.mean_rms(start, end).items()}


def song_truths(volume: pd.DataFrame) -> dict[str, SongTruth]:
    """SongTruth per song of a stem_volume table (songs without rows are absent)."""
    out: dict[str, SongTruth] = {}
    for song_id, df in volume.groupby("song_id", sort=True):
        frame_s = float((df["end"] - df["start"]).median())
        table = df.pivot_table(index="frame", columns="stem", values="rms", aggfunc="mean")
        table = table.reindex(columns=list(STEMS))
        out[str(song_id)] = SongTruth(frame_s, table.to_numpy(dtype=np.float64))
    return out


def build_windows(
    tracks: pd.DataFrame,
    truths: Mapping[str, SongTruth],
    window_s: float,
    hop_s: float,
    active_rms: float,
) -> pd.DataFrame:
    """One row per window of every song: WINDOW_COLUMNS + caption, genre, mood, and one active_<stem> per anchor.

    Songs without stem truth get their metadata caption only and active_* = NA.
    """
    rows = []
    for track in tracks.sort_values("song_id").itertuples(index=False):
        truth = truths.get(str(track.song_id))
        for i, start in enumerate(window_starts(float(track.duration_s), window_s, hop_s)):
            end = float(start + window_s)
            row = dict(song_id=track.song_id, window=i, start=float(start), end=end, split=track.split)
            row.update(genre=str(track.genre or ""), mood=str(track.mood or ""))
            if truth is not None:
                act = truth.active(float(start), end, active_rms)
                row.update({f"active_{s}": act[s] for s in ANCHORS})
                row["caption"] = caption(act, track.genre, track.mood)
            else:
                row.update({f"active_{s}": pd.NA for s in ANCHORS})
                row["caption"] = _meta_caption(track)
            rows.append(row)
    df = pd.DataFrame(rows)
    if not len(df):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in WINDOW_COLUMNS.items()})
    return df.astype(WINDOW_COLUMNS | {"caption": "string", "genre": "string", "mood": "string"})


def _meta_caption(track) -> str:
    style = [
        str(v).strip().lower() for v in (track.genre, track.mood) if str(v or "").strip().lower() not in ("", "unknown")
    ]
    return (", ".join(style) + ".") if style else "music."


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A file as float32 mono at `sample_rate` (soxr resampling)."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def to_mono(audio: np.ndarray, sr: int, sample_rate: int) -> np.ndarray:
    """Any (samples,) / (samples, channels) / (channels, samples) array as float32 mono at `sample_rate`."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=0) if a.shape[0] < a.shape[1] else a.mean(axis=1)
    if sr != sample_rate:
        a = soxr.resample(a, sr, sample_rate)
    return np.ascontiguousarray(a, dtype=np.float32)


def crop(mono: np.ndarray, start_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """`n_samples` from `start_s`, zero-padded past the end."""
    a = round(start_s * sample_rate)
    seg = mono[a : a + n_samples]
    if len(seg) < n_samples:
        seg = np.pad(seg, (0, n_samples - len(seg)))
    return seg


def sliding_windows(mono: np.ndarray, sample_rate: int, window_s: float, hop_s: float) -> np.ndarray:
    """(n_windows, window samples) of one signal, as `window_starts` places them."""
    n = round(window_s * sample_rate)
    starts = window_starts(len(mono) / sample_rate, window_s, hop_s)
    return np.stack([crop(mono, float(s), n, sample_rate) for s in starts])


class TrainWindows:
    """Batches of (waveforms, captions) from the train windows, with random shift and gain.

    `batch(indices, rng)` stacks the given windows; with an rng each start is shifted by up to
    +-shift_s (clipped to the song), the span re-captioned from its truth and a random gain applied.
    """

    def __init__(
        self,
        windows: pd.DataFrame,
        audio: Mapping[str, np.ndarray],
        truths: Mapping[str, SongTruth],
        sample_rate: int,
        window_s: float,
        active_rms: float,
        shift_s: float = 0.0,
        gain_db: float = 0.0,
        meta: Mapping[str, tuple[str, str]] | None = None,
    ):
        self.windows = windows.reset_index(drop=True)
        self.audio, self.truths = audio, truths
        self.sample_rate, self.window_s, self.active_rms = sample_rate, window_s, active_rms
        self.shift_s, self.gain_db = shift_s, gain_db
        self.meta = meta or {}
        self.n = round(window_s * sample_rate)

    def __len__(self) -> int:
        return len(self.windows)

    def item(self, i: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, str]:
        row = self.windows.iloc[i]
        song = str(row["song_id"])
        mono = self.audio[song]
        start = float(row["start"])
        if rng is not None and self.shift_s > 0:
            longest = max(0.0, len(mono) / self.sample_rate - self.window_s)
            start = float(np.clip(start + rng.uniform(-self.shift_s, self.shift_s), 0.0, longest))
        wave = crop(mono, start, self.n, self.sample_rate)
        if rng is not None and self.gain_db > 0:
            wave = wave * np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        truth = self.truths.get(song)
        if truth is None or rng is None:
            text = str(row["caption"])
        else:
            genre, mood = self.meta.get(song, (row.get("genre", ""), row.get("mood", "")))
            text = caption(truth.active(start, start + self.window_s, self.active_rms), genre, mood)
        return wave, text

    def batch(self, indices: Sequence[int], rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[str]]:
        items = [self.item(int(i), rng) for i in indices]
        return np.stack([w for w, _ in items]).astype(np.float32), [t for _, t in items]
