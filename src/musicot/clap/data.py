"""10 s windows of the corpus and their captions, written from the stem truth of each window.

A window's caption names the stems whose mean RMS over the window (corpus ``stem_volume``,
one value per 0.5 s frame) exceeds ``active_rms``, in `ANCHORS` order, and adds the song's
genre and mood, e.g. ``"vocals, bass and drums. funk, dark."`` or ``"drums and piano. jazz, calm."``.
Captions never name what is absent: a small text tower cannot learn negation ("no vocals"),
and the bare anchor word then lands nearest the windows *without* that stem.

Training augments every draw so the text stays true: a random shift around the window start
(the caption is rewritten from the truth of the shifted span), a random gain, and with
probability ``remix_prob`` a remix of a random subset of the window's stems captioned with just
that subset (genre and mood kept half of the time). Finally, with probability ``phrase_prob``, the
text is replaced by one stem word that is audible in the window (an instrument phrase).

The training labels per (window, anchor stem), learnt by the tagging head and the anchor
sigmoid term, are the stem's loudness over the span (`SongTruth.loudness`): the analyzability
correlates the anchor similarity with stem *volume*, and presence labels (1/0) teach only
whether a stem plays. Measured (raw CLAP r on the 12 held-out songs, seed 1234, 150 tagging
steps), presence -> loudness: vocals .33 -> .58, bass .70 -> .61, drums .46 -> .61, guitar
.49 -> .58, piano .25 -> .36.

Why: trained on full captions only, the text tower learns caption length (= how many stems
play) and genre long before it learns which word is which, so a bare anchor word ("drums")
lands nearest the *sparsest* windows and every anchor anti-correlates with its stem (measured:
zero-shot AUC 0.06-0.56, r < 0 for four of five anchors). Phrases pair each single word with
windows of every density, and remixes give windows where one stem plays alone.
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


NO_ANCHOR_TEXT = "music"  # caption of a window where no anchor stem plays


def caption(active: Mapping[str, bool], genre: str = "", mood: str = "") -> str:
    """Caption of a window: the active anchor stems (in `ANCHORS` order), then genre and mood."""
    present = [s for s in ANCHORS if active.get(s, False)]
    text = join_words(present) if present else NO_ANCHOR_TEXT
    style = [str(v).strip().lower() for v in (genre, mood) if str(v or "").strip().lower() not in ("", "unknown")]
    return text + "." + (f" {', '.join(style)}." if style else "")


@dataclass
class SongTruth:
    """Per-stem RMS frames of one song (frames x STEMS), for window activity at any start."""

    frame_s: float
    rms: np.ndarray  # (n_frames, len(STEMS)); NaN when a stem has no truth

    def frames(self, start: float, end: float) -> np.ndarray:
        """(frames, len(STEMS)) RMS of the frames overlapping [start, end); at least one once the song has any."""
        a = int(np.floor(start / self.frame_s))
        b = max(a + 1, int(np.ceil(end / self.frame_s)))
        return self.rms[min(a, len(self.rms) - 1) : b]

    def mean_rms(self, start: float, end: float) -> dict[str, float]:
        """Mean RMS per stem of the frames overlapping [start, end)."""
        if not len(self.rms):
            return {s: float("nan") for s in STEMS}
        seg = self.frames(start, end)
        return {
            s: float(np.nanmean(seg[:, i])) if np.isfinite(seg[:, i]).any() else float("nan")
            for i, s in enumerate(STEMS)
        }

    def active(self, start: float, end: float, threshold: float) -> dict[str, bool]:
        return {s: bool(v > threshold) for s, v in self.mean_rms(start, end).items()}

    def loudness(self, start: float, end: float, reference: Mapping[str, float]) -> dict[str, float]:
        """Per stem of `reference`: mean over the frames of [start, end) of min(1, RMS / reference[stem]).

        1 when the stem plays at its typical full level throughout, 0 when silent; a stem playing
        half the span, or 6 dB down, scores about 1/2. NaN for a stem without truth.
        """
        if not len(self.rms):
            return {s: float("nan") for s in reference}
        seg = self.frames(start, end)
        out = {}
        for stem, ref in reference.items():
            values = seg[:, STEMS.index(stem)]
            known = np.isfinite(values)
            out[stem] = float(np.minimum(1.0, values[known] / ref).mean()) if known.any() else float("nan")
        return out


def loudness_reference(truths: Mapping[str, SongTruth], active_rms: float, quantile: float) -> dict[str, float]:
    """Per anchor stem, the `quantile` of its frame RMS over the frames where it plays (> active_rms).

    The level a loudness label of 1 stands for: a per-stem scale, because a vocal at full level
    is louder than a piano at full level in any mix. Stems never heard fall back to 2 * active_rms.
    """
    ref = {}
    for stem in ANCHORS:
        i = STEMS.index(stem)
        frames = np.concatenate([t.rms[:, i] for t in truths.values() if len(t.rms)] or [np.zeros(0)])
        playing = frames[np.isfinite(frames) & (frames > active_rms)]
        ref[stem] = float(np.quantile(playing, quantile)) if len(playing) else 2.0 * active_rms
    return ref


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
    """One row per window of every song: WINDOW_COLUMNS + caption, genre, mood, and per anchor stem
    active_<stem> and rms_<stem> (its mean truth RMS over the window).

    Songs without stem truth get their own caption (or genre and mood; "music." when they have
    none), active_* = NA and rms_* = NaN.
    """
    rows = []
    for track in tracks.sort_values("song_id").itertuples(index=False):
        truth = truths.get(str(track.song_id))
        for i, start in enumerate(window_starts(float(track.duration_s), window_s, hop_s)):
            end = float(start + window_s)
            row = dict(song_id=track.song_id, window=i, start=float(start), end=end, split=track.split)
            row.update(genre=str(track.genre or ""), mood=str(track.mood or ""))
            if truth is not None:
                rms = truth.mean_rms(float(start), end)
                act = {s: bool(v > active_rms) for s, v in rms.items()}
                row.update({f"active_{s}": act[s] for s in ANCHORS})
                row.update({f"rms_{s}": rms[s] for s in ANCHORS})
                row["caption"] = caption(act, track.genre, track.mood)
            else:
                row.update({f"active_{s}": pd.NA for s in ANCHORS})
                row.update({f"rms_{s}": float("nan") for s in ANCHORS})
                text = metadata_caption(getattr(track, "caption", ""), track.genre, track.mood)
                row["caption"] = text or f"{NO_ANCHOR_TEXT}."
            rows.append(row)
    df = pd.DataFrame(rows)
    if not len(df):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in WINDOW_COLUMNS.items()})
    return df.astype(WINDOW_COLUMNS | {"caption": "string", "genre": "string", "mood": "string"})


def metadata_caption(text: str = "", genre: str = "", mood: str = "") -> str:
    """Caption of a song without stem truth: its own caption (a sidecar's), else genre and mood; "" if none."""
    if str(text or "").strip():
        return str(text).strip()
    style = [str(v).strip().lower() for v in (genre, mood) if str(v or "").strip().lower() not in ("", "unknown")]
    return (", ".join(style) + ".") if style else ""


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


def load_stems(stems_dir: str | Path, sample_rate: int) -> dict[str, np.ndarray]:
    """Every `STEMS` file ``<stems_dir>/<stem>.flac`` present, as float32 mono at `sample_rate`."""
    out = {}
    for stem in STEMS:
        path = Path(stems_dir) / f"{stem}.flac"
        if path.is_file():
            out[stem] = load_mono(path, sample_rate)
    return out


class TrainWindows:
    """Batches of (waveforms, captions) from the train windows, augmented so the caption stays true.

    `batch(indices, rng)` stacks the given windows. With an rng each window is cut to a random
    `crop_s` span of itself (CNN towers pool over time, so a shorter training crop costs less and
    embeds the same way), shifted by up to +-shift_s (clipped to the song) and re-captioned from
    the truth of that span, a random gain is applied and,
    with probability `remix_prob` for songs whose `stems` are given, the window becomes the sum
    of a random non-empty subset of its active stems (each kept with probability 1/2, the
    unnamed "other" stem too), captioned with that subset. Finally, with probability
    `phrase_prob`, the text becomes just one of the audible anchor stems ("drums"): an instrument
    phrase true of the window whatever else plays in it. Without an rng: the window as listed.

    Labels are 1/0 per anchor stem audible in the wave, or, with `loudness_ref` (see
    `loudness_reference`), each stem's loudness in [0, 1] over the span (`SongTruth.loudness`,
    scaled by the random gain): how loud it plays, not only whether.
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
        stems: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        remix_prob: float = 0.0,
        crop_s: float | None = None,
        phrase_prob: float = 0.0,
        loudness_ref: Mapping[str, float] | None = None,
        stem_gain_db: float = 0.0,
        cross_song_prob: float = 0.0,
        eq_db: float = 0.0,
    ) -> None:
        self.windows = windows.reset_index(drop=True)
        self.audio, self.truths = audio, truths
        self.sample_rate, self.window_s, self.active_rms = sample_rate, window_s, active_rms
        self.shift_s, self.gain_db = shift_s, gain_db
        self.meta = meta or {}
        self.stems = stems or {}
        self.remix_prob = remix_prob
        self.phrase_prob = phrase_prob
        self.loudness_ref = dict(loudness_ref) if loudness_ref else None
        self.stem_gain_db, self.cross_song_prob, self.eq_db = stem_gain_db, cross_song_prob, eq_db
        self._songs = sorted(self.stems)  # remix sources, in a fixed order (draws depend only on the rng)
        self.crop_s = min(crop_s or window_s, window_s)
        self.n = round(window_s * sample_rate)
        self.n_crop = round(self.crop_s * sample_rate)

    def __len__(self) -> int:
        return len(self.windows)

    def _remix(self, song: str, start: float, active: dict[str, bool], rng: np.random.Generator):
        """(wave, kept anchor activity, labels or None, own) of a random subset of the active stems; None if
        nothing is active. `own`: every stem is the window's song's (its genre and mood still hold).

        Each kept stem may come from another train song (`cross_song_prob`, at a random start: pairings of
        instruments no song has), get its own gain (up to +-`stem_gain_db`: balances the corpus never mixes)
        and a random EQ curve (up to +-`eq_db`, level kept: other timbres of the same instrument). Labels
        then follow each stem's own source and gain; None when every stem is the window's own at unit gain
        (the caller's labels hold)."""
        named = [s for s in ANCHORS if active.get(s) and s in self.stems[song]]
        if not named:
            return None
        keep = [s for s in named if rng.random() < 0.5] or [named[rng.integers(len(named))]]
        if active.get("other") and "other" in self.stems[song] and rng.random() < 0.5:
            keep.append("other")
        if not (self.stem_gain_db or self.cross_song_prob or self.eq_db):
            wave = sum(crop(self.stems[song][s], start, self.n_crop, self.sample_rate) for s in keep)
            return wave, {s: s in keep for s in ANCHORS}, None, True
        wave = np.zeros(self.n_crop, np.float32)
        kept_active = {s: False for s in ANCHORS}
        labels = np.zeros(len(ANCHORS), np.float32)
        own = True  # every stem from this window's song: its genre and mood still describe the remix
        for stem in keep:
            source, at = song, start
            if self.cross_song_prob and rng.random() < self.cross_song_prob:
                source = self._songs[rng.integers(len(self._songs))]
                longest = max(0.0, len(self.stems[source].get(stem, ())) / self.sample_rate - self.crop_s)
                at = float(rng.uniform(0.0, longest))
                own = own and source == song
            if stem not in self.stems[source]:
                continue
            gain = 10 ** (rng.uniform(-self.stem_gain_db, self.stem_gain_db) / 20) if self.stem_gain_db else 1.0
            part = crop(self.stems[source][stem], at, self.n_crop, self.sample_rate)
            if self.eq_db:
                part = random_eq(part, self.sample_rate, self.eq_db, rng)
            wave += part * np.float32(gain)
            if stem not in ANCHORS:
                continue
            truth = self.truths.get(source)
            span = (at, at + self.crop_s)
            kept_active[stem] = bool(truth is not None and truth.active(*span, self.active_rms)[stem])
            if not kept_active[stem]:
                continue
            level = truth.loudness(*span, self.loudness_ref)[stem] if self.loudness_ref is not None else 1.0
            labels[ANCHORS.index(stem)] = min(1.0, level * gain)
        return wave, kept_active, labels, own

    def item(self, i: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, str, np.ndarray]:
        """(wave, caption, labels): labels per anchor stem (1/0 or loudness, see the class), NaN without truth."""
        row = self.windows.iloc[i]
        song = str(row["song_id"])
        start = float(row["start"])
        if rng is None:
            active = {s: row.get(f"active_{s}", pd.NA) for s in ANCHORS}
            return crop(self.audio[song], start, self.n, self.sample_rate), str(row["caption"]), _labels(active)
        if self.crop_s < self.window_s:
            start += rng.uniform(0.0, self.window_s - self.crop_s)
        if self.shift_s > 0:
            start += rng.uniform(-self.shift_s, self.shift_s)
        longest = max(0.0, len(self.audio[song]) / self.sample_rate - self.crop_s)
        start = float(np.clip(start, 0.0, longest))
        span = (start, start + self.crop_s)
        truth = self.truths.get(song)
        genre, mood = self.meta.get(song, (row.get("genre", ""), row.get("mood", "")))
        remix, remix_labels = None, None
        if truth is not None and song in self.stems and rng.random() < self.remix_prob:
            remix = self._remix(song, start, truth.active(*span, self.active_rms), rng)
        if remix is not None:
            wave, active, remix_labels, own = remix
            text = caption(active, genre, mood) if own and rng.random() < 0.5 else caption(active)
        elif truth is None:
            wave, text, active = crop(self.audio[song], start, self.n_crop, self.sample_rate), str(row["caption"]), {}
        else:
            active = truth.active(*span, self.active_rms)
            wave, text = crop(self.audio[song], start, self.n_crop, self.sample_rate), caption(active, genre, mood)
        playing = [s for s in ANCHORS if active.get(s) is True]
        if playing and rng.random() < self.phrase_prob:
            text = playing[rng.integers(len(playing))]
        gain = 10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20) if self.gain_db > 0 else 1.0
        wave = wave * np.float32(gain)
        labels = _labels(active)
        if remix_labels is not None:
            labels = np.minimum(1.0, remix_labels * gain).astype(np.float32) if self.loudness_ref else remix_labels
        elif self.loudness_ref is not None and truth is not None:
            level = truth.loudness(*span, self.loudness_ref)
            loud = np.array([level[s] for s in ANCHORS], dtype=np.float32)
            labels = np.where(labels > 0, np.minimum(1.0, loud * gain), labels).astype(np.float32)
        return np.asarray(wave, dtype=np.float32), text, labels

    def batch(
        self, indices: Sequence[int], rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(waves (n, samples), captions, labels (n, len(ANCHORS)))."""
        items = [self.item(int(i), rng) for i in indices]
        waves = np.stack([w for w, _, _ in items]).astype(np.float32)
        return waves, [t for _, t, _ in items], np.stack([y for _, _, y in items])


def random_eq(wave: np.ndarray, sample_rate: int, depth_db: float, rng: np.random.Generator) -> np.ndarray:
    """`wave` through a random smooth EQ curve (up to +-depth_db over log frequency), at its own RMS.

    Three random cosines over log2 frequency: tilts, bumps and notches an octave or more wide, the kind of
    difference between two instruments' renderings of one family, not noise."""
    spectrum = np.fft.rfft(wave)
    octaves = np.log2(np.maximum(np.fft.rfftfreq(len(wave), 1.0 / sample_rate), 20.0) / 20.0)
    curve = np.zeros_like(octaves)
    for _ in range(3):
        curve += np.cos(2 * np.pi * octaves / rng.uniform(1.5, 10.0) + rng.uniform(0, 2 * np.pi))
    curve *= depth_db / 3.0
    out = np.fft.irfft(spectrum * 10 ** (curve / 20), n=len(wave)).astype(np.float32)
    before, after = float(np.sqrt(np.mean(wave**2))), float(np.sqrt(np.mean(out**2)))
    return out * np.float32(before / after) if after > 0 else out


def _labels(active: Mapping[str, object]) -> np.ndarray:
    """float32 1/0 per anchor stem; NaN where the activity is unknown (no truth)."""
    return np.array(
        [np.nan if active.get(s) is None or pd.isna(active.get(s)) else float(bool(active[s])) for s in ANCHORS],
        dtype=np.float32,
    )
