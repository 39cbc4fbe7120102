"""The song table contract shared by every corpus source (built-in synth, folder, manifest).

A source writes one *part* directory::

    <part>/tracks.parquet        one row per accepted song (TRACK_COLUMNS)
    <part>/lyric_lines.parquet   timed lyric lines (LINE_COLUMNS), may be empty
    <part>/lyric_words.parquet   timed lyric words (WORD_COLUMNS), may be empty
    <part>/sections.parquet      section labels with times (SECTION_COLUMNS), may be empty
    <part>/stem_volume.parquet   per-stem RMS per window (VOLUME_COLUMNS), may be empty
    <part>/rejected.tsv          one row per input that did not make it (REJECT_COLUMNS)
    <part>/audio/<song_id>/mix.flac (+ <stem>.flac for sources with stems)

`musicot.data.merge` concatenates parts into ``results/corpus/``.
"""

from __future__ import annotations

import hashlib
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

STEMS = ("vocals", "bass", "drums", "guitar", "piano", "other")
SPLITS = ("train", "valid", "reference")

TRACK_COLUMNS: dict[str, str] = {
    "song_id": "string",
    "source": "string",  # synth | folder | manifest
    "source_path": "string",  # original file, "" for synth
    "split": "string",  # train | valid | reference
    "audio_path": "string",  # mix, 16-bit FLAC at corpus.sample_rate, stereo
    "stems_dir": "string",  # folder with <stem>.flac, "" when the source has no stems
    "sample_rate": "int64",
    "channels": "int64",
    "duration_s": "float64",
    "caption": "string",  # "" when unknown
    "genre": "string",
    "subgenre": "string",
    "mood": "string",
    "gender": "string",  # male | female | none (instrumental) | unknown
    "instruments": "string",  # comma-separated stem/instrument names, "" when unknown
    "tempo_bpm": "float64",  # NaN when unknown
    "key": "string",  # e.g. "A minor", "" when unknown
    "lyrics": "string",  # lines joined by "\n", "" when none/unknown
    "lyrics_timed": "bool",  # lyric_lines has rows for this song
    "gain_db": "float64",  # loudness normalisation applied
    "content_sha1": "string",  # of the decoded input samples (of the part, when split), for duplicate detection
    "notes": "string",  # transformations applied (resampled, mono->stereo, trimmed, part k of n)
}
LINE_COLUMNS = {"song_id": "string", "line": "int64", "text": "string", "start": "float64", "end": "float64"}
WORD_COLUMNS = {
    "song_id": "string",
    "line": "int64",
    "word_index": "int64",
    "word": "string",
    "start": "float64",
    "end": "float64",
    "pitch": "int64",  # MIDI note the word is sung on
}
SECTION_COLUMNS = {"song_id": "string", "index": "int64", "label": "string", "start": "float64", "end": "float64"}
VOLUME_COLUMNS = {
    "song_id": "string",
    "stem": "string",
    "frame": "int64",
    "start": "float64",
    "end": "float64",
    "rms": "float64",
}
REJECT_COLUMNS = {"source_path": "string", "song_id": "string", "reason": "string", "detail": "string"}

PART_TABLES = {
    "tracks.parquet": TRACK_COLUMNS,
    "lyric_lines.parquet": LINE_COLUMNS,
    "lyric_words.parquet": WORD_COLUMNS,
    "sections.parquet": SECTION_COLUMNS,
    "stem_volume.parquet": VOLUME_COLUMNS,
}


def frame(rows: list[Mapping] | pd.DataFrame, columns: Mapping[str, str]) -> pd.DataFrame:
    """A DataFrame with exactly `columns`, in order, cast to their dtypes (empty is fine)."""
    df = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows)
    missing = [c for c in columns if c not in df.columns]
    if missing and len(df):
        raise ValueError(f"table is missing columns {missing}")
    if not len(df):
        df = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    return df[list(columns)].astype(dict(columns))


def write_part(
    part_dir: Path,
    tables: Mapping[str, list[Mapping] | pd.DataFrame],
    rejected: list[Mapping] | pd.DataFrame,
) -> None:
    """Write a part directory; tables not given are written empty so every part is complete."""
    part_dir.mkdir(parents=True, exist_ok=True)
    for name, columns in PART_TABLES.items():
        frame(tables.get(name, []), columns).to_parquet(part_dir / name, index=False)
    frame(rejected, REJECT_COLUMNS).to_csv(part_dir / "rejected.tsv", sep="\t", index=False)


def read_part(part_dir: Path) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Read back what `write_part` wrote."""
    tables = {name: frame(pd.read_parquet(part_dir / name), cols) for name, cols in PART_TABLES.items()}
    rejected = pd.read_csv(part_dir / "rejected.tsv", sep="\t", dtype=str, keep_default_na=False)
    return tables, frame(rejected, REJECT_COLUMNS)


def assign_split(song_id: str, fractions: Mapping[str, float], seed: int) -> str:
    """Deterministic split from a hash of (seed, song_id): stable when songs are added or removed.

    `fractions` gives the share of "valid" and "reference"; the rest is "train".
    """
    digest = hashlib.sha1(f"{seed}:{song_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name in ("valid", "reference"):
        edge += float(fractions.get(name, 0.0))
        if u < edge:
            return name
    return "train"


def hash_samples(hasher: hashlib._Hash, audio: np.ndarray) -> None:
    """Feed samples (as float32) to `hasher`; blocks fed in order hash like the whole signal."""
    hasher.update(np.ascontiguousarray(audio, dtype=np.float32))  # the buffer itself: no bytes copy


def sha1_of_samples(audio: np.ndarray) -> str:
    """Hash of decoded samples (as float32), so re-encoded copies of one file collide."""
    hasher = hashlib.sha1()
    hash_samples(hasher, audio)
    return hasher.hexdigest()


@dataclass(frozen=True)
class CorpusAudio:
    """What every corpus source shares: output format, loudness and split rules."""

    sample_rate: int = 44100
    loudness_lufs: float = -16.0
    peak_ceiling: float = 0.95
    split_fractions: Mapping[str, float] = field(default_factory=lambda: {"valid": 0.1, "reference": 0.1})
    seed: int = 1234

    @classmethod
    def from_config(cls, config: Mapping) -> CorpusAudio:
        """From a validated config (top-level `seed` and the `corpus` section)."""
        corpus = config["corpus"]
        return cls(
            sample_rate=corpus["sample_rate"],
            loudness_lufs=corpus["loudness_lufs"],
            peak_ceiling=corpus["peak_ceiling"],
            split_fractions=dict(corpus["split_fractions"]),
            seed=config["seed"],
        )


def process_cpu_seconds() -> float:
    """CPU time of this process and its reaped children (espeak-ng, decode workers): a part's build cost."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
