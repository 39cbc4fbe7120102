"""Ingest inputs: folder walks, manifest rows, sidecar metadata, LRC lyrics, song ids and parts.

Almost everything here happens before any audio is decoded: it decides what the inputs are,
what we know about them, and which ones are already rejected (bad ids, duplicates, non-audio).
Once a recording's length is known, `plan_parts` says which tracks it becomes, and `part_item`
gives each part its share of the metadata and timed lyrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.data.checks import Rejection
from musicot.data.table import SPLITS, CorpusAudio, assign_split

log = logging.getLogger("musicot.data.ingest")

SIDECARS = (".json", ".lrc", ".txt")
UNTIMED_LYRICS = ("lyrics", "txt_lyrics")  # metadata keys whose text has no times
TEXT_FIELDS = ("caption", "genre", "subgenre", "mood", "key")
GENDERS = {"male": "male", "female": "female", "none": "none", "instrumental": "none", "unknown": "unknown"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SLUG_MAX_CHARS = 48
ID_HASH_HEX = 8
PART_ID = re.compile(r"^(.+)-p\d{2,}$")  # what `part_id` makes: <song id>-p00, -p01, ...
PART_DIGITS = 2
LONG_FILES = ("split", "trim", "reject")  # what becomes of a recording longer than max_duration_s
SECONDS_PER_MINUTE = 60
LRC_LINE = re.compile(r"^((?:\[\d+:\d+(?:[.:]\d+)?\])+)(.*)$")  # one or more leading [mm:ss.xx]
LRC_STAMP = re.compile(r"\[(\d+):(\d+(?:[.:]\d+)?)\]")
LRC_WORD_STAMP = re.compile(r"<\d+:\d+(?:[.:]\d+)?>")
MANIFEST_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": lambda p: pd.read_csv(p, dtype=str, keep_default_na=False),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False),
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".parquet": pd.read_parquet,
}


@dataclass(frozen=True)
class Item:
    """One input, with its metadata gathered; `rejection` is set when it fails before decoding."""

    source_path: str
    song_id: str
    path: Path | None = None
    meta: Mapping[str, object] = field(default_factory=dict)
    lrc: tuple[tuple[float, str], ...] = ()  # (start s, text); "" text marks the end of a line
    notes: tuple[str, ...] = ()
    rejection: Rejection | None = None


def _present(v: object) -> bool:
    """A metadata value that says something (not None/NaN/blank/empty list)."""
    if isinstance(v, (list, tuple, np.ndarray)):
        return len(v) > 0
    return v is not None and not (pd.api.types.is_scalar(v) and pd.isna(v)) and str(v).strip() != ""


def derive_song_id(rel_path: str) -> str:
    """ASCII slug of the path (sans extension) + short sha1 of the whole path: stable, unique, safe."""
    rel_path = unicodedata.normalize("NFC", rel_path)  # macOS stores NFD: same name, same id
    ascii_text = unicodedata.normalize("NFKD", str(Path(rel_path).with_suffix(""))).encode("ascii", "ignore")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.decode().lower())[:SLUG_MAX_CHARS].strip("-")
    digest = hashlib.sha1(rel_path.encode("utf-8")).hexdigest()[:ID_HASH_HEX]
    return f"{slug}-{digest}" if slug else digest


def _song_id(meta: Mapping[str, object], rel_path: str) -> str:
    explicit = meta.get("id")
    if not _present(explicit):
        return derive_song_id(rel_path)
    if isinstance(explicit, float) and explicit.is_integer():
        return str(int(explicit))  # numeric ids read from JSON/parquet
    return str(explicit).strip()


def part_id(song_id: str, index: int, count: int) -> str:
    """Id of part `index` (from 0) of a recording split into `count` parts: <song_id>-p00, ..."""
    return f"{song_id}-p{index:0{max(PART_DIGITS, len(str(count - 1)))}d}"


@dataclass(frozen=True)
class Part:
    """A stretch of one recording that becomes one track (the whole recording, its start, or a part)."""

    song_id: str
    start: int  # first frame, at the file's own rate
    frames: int
    sample_rate: int
    count: int = 1  # parts the recording is split into
    note: str = ""  # how the track relates to the recording, for the notes column

    @property
    def offset_s(self) -> float:
        return self.start / self.sample_rate

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass(frozen=True)
class Plan:
    """The tracks one recording becomes: `count` parts of `frames` frames from its start, in all.

    Parts are made on demand (`part(k)`), so a header that promises an absurd length costs
    nothing until decoding shows it is `truncated`.
    """

    song_id: str
    frames: int  # all of the recording, or its first max_duration_s when trimmed
    sample_rate: int
    count: int = 1
    note: str = ""  # for a single track: what was done to the recording

    def part(self, k: int) -> Part:
        if self.count == 1:
            return Part(self.song_id, 0, self.frames, self.sample_rate, note=self.note)
        start, end = k * self.frames // self.count, (k + 1) * self.frames // self.count  # equal to a frame
        sr = self.sample_rate
        note = f"part {k + 1} of {self.count}: {start / sr:.2f}-{end / sr:.2f} s of the recording"
        return Part(part_id(self.song_id, k, self.count), start, end - start, sr, self.count, note)


def too_long(duration_s: float, max_duration_s: float) -> Rejection:
    """The `too_long` rejection of long_files=reject."""
    detail = f"{duration_s:.2f} s is longer than the {max_duration_s:g} s maximum"
    return Rejection("too_long", detail + " (corpus.ingest.long_files=reject; split or trim would keep it)")


def plan_parts(song_id: str, frames: int, sr: int, max_duration_s: float, long_files: str) -> Plan | Rejection:
    """What a recording of `frames` frames becomes: itself, its start (trim), or equal parts (split)."""
    limit = round(max_duration_s * sr)
    if frames <= limit:
        return Plan(song_id, frames, sr)
    if long_files == "reject":
        return too_long(frames / sr, max_duration_s)
    if long_files == "trim":
        return Plan(song_id, limit, sr, note=f"trimmed {frames / sr:.2f}->{max_duration_s:g} s")
    return Plan(song_id, frames, sr, count=-(-frames // limit))  # ceil: the fewest parts that each fit


def claim_ids(items: list[Item], reserve_part_ids: bool = False) -> list[Item]:
    """Reject bad and repeated ids in input order; the first holder keeps an id.

    With `reserve_part_ids` (long recordings are split), an id shaped like a part id of another
    input (`x-p00` next to `x`) is rejected too: if `x` is split, both would write `x-p00`.
    """
    holders: dict[str, str] = {}
    out = []
    for item in items:
        key = item.song_id.casefold()  # ids name folders, and some filesystems ignore case
        if item.rejection is None and not ID_PATTERN.match(item.song_id):
            item = replace(
                item, rejection=Rejection("bad_id", f"id {item.song_id!r} is not [A-Za-z0-9][A-Za-z0-9._-]*")
            )
        elif item.rejection is None and key in holders:
            item = replace(
                item,
                rejection=Rejection("duplicate_id", f"id {item.song_id!r} is already used by {holders[key]}"),
            )
        elif item.rejection is None:
            holders[key] = item.source_path
        out.append(item)
    if reserve_part_ids:
        out = [_reserve_part_id(item, holders) for item in out]
    return out


def _reserve_part_id(item: Item, holders: Mapping[str, str]) -> Item:
    base = PART_ID.match(item.song_id) if item.rejection is None else None
    if base is None or base.group(1).casefold() not in holders:
        return item
    owner = holders[base.group(1).casefold()]
    why = f"id {item.song_id!r} is kept for the parts of {owner} (id {base.group(1)!r}) if that recording is split"
    return replace(item, rejection=Rejection("duplicate_id", why))


def parse_lrc(text: str) -> tuple[tuple[float, str], ...]:
    """Timed lines of an LRC file, sorted by time; metadata tags like [ar:...] are ignored."""
    events = []
    for raw in text.splitlines():
        m = LRC_LINE.match(raw.strip())
        if m is None:
            continue
        words = LRC_WORD_STAMP.sub("", m.group(2)).strip()  # enhanced LRC word timings
        for minutes, seconds in LRC_STAMP.findall(m.group(1)):
            events.append((int(minutes) * SECONDS_PER_MINUTE + float(seconds.replace(":", ".")), words))
    return tuple(sorted(events, key=lambda e: e[0]))


def lyric_lines(song_id: str, lrc: Sequence[tuple[float, str]], duration_s: float) -> list[dict]:
    """lyric_lines rows: a line ends where the next timestamp starts, the last at the song end."""
    rows = []
    for k, (start, text) in enumerate(lrc):
        if not text or start >= duration_s:  # blank stamps only end the previous line
            continue
        end = lrc[k + 1][0] if k + 1 < len(lrc) else duration_s
        rows.append({"song_id": song_id, "line": len(rows), "text": text, "start": start, "end": min(end, duration_s)})
    return rows


def shift_lrc(lrc: Sequence[tuple[float, str]], offset_s: float, duration_s: float) -> tuple[tuple[float, str], ...]:
    """The LRC events of the stretch [offset_s, offset_s + duration_s) of a song, in its own time.

    A line already being sung at the cut starts at 0; lines starting after the stretch are
    dropped, so `lyric_lines` ends the last one at the stretch's end.
    """
    out = []
    for k, (start, text) in enumerate(lrc):
        end = lrc[k + 1][0] if k + 1 < len(lrc) else math.inf
        if end <= offset_s or start >= offset_s + duration_s:
            continue
        out.append((max(0.0, start - offset_s), text))
    return tuple(out)


def part_item(item: Item, offset_s: float, duration_s: float, split: bool) -> Item:
    """The item as the track [offset_s, offset_s + duration_s) of its recording (same id, same split).

    Timed lyrics are shifted and clipped to the track. A part of a split recording loses the
    untimed lyrics: nothing says which of their lines it holds.
    """
    lrc = shift_lrc(item.lrc, offset_s, duration_s)
    dropped = [k for k in UNTIMED_LYRICS if split and _present(item.meta.get(k))]
    if not dropped:
        return replace(item, lrc=lrc)
    meta = {k: v for k, v in item.meta.items() if k not in UNTIMED_LYRICS}
    note = "untimed lyrics left out: a part of a split recording cannot tell which lines it holds"
    return replace(item, lrc=lrc, meta=meta, notes=(*item.notes, note))


def read_sidecars(sidecars: Mapping[str, Path]) -> tuple[dict, tuple, list[str]]:
    """(metadata, lrc events, notes) from a track's .json/.lrc/.txt; a bad sidecar becomes a note."""
    meta: dict = {}
    lrc: tuple = ()
    notes = []
    for suffix, path in sorted(sidecars.items()):
        try:
            text = path.read_text(encoding="utf-8-sig", errors="replace")
            if suffix == ".json":
                loaded = json.loads(text)
                if not isinstance(loaded, dict):
                    raise ValueError("top level is not an object")
                meta = {**loaded, **meta}
            elif suffix == ".lrc":
                lrc = parse_lrc(text)
            elif suffix == ".txt":
                meta.setdefault("txt_lyrics", text.strip())
        except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
            notes.append(f"sidecar {path.name} ignored: {exc}")
            log.warning("sidecar %s ignored: %s", path, exc)
    return meta, lrc, notes


def _walk(root: Path, skip: Path) -> tuple[list[Path], list[OSError]]:
    """Every file under root (symlinked folders listed, not followed) but the output, and listing errors."""
    found, errors, skip = [], [], skip.resolve()
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):  # default would hide them
        here = Path(dirpath)
        if any(here.joinpath(n).resolve() == skip for n in dirnames):
            log.info("not ingesting the output folder %s", skip)
        dirnames[:] = [n for n in dirnames if here.joinpath(n).resolve() != skip]
        found += [here / n for n in dirnames if here.joinpath(n).is_symlink()]
        found += [here / n for n in filenames]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix()), errors


def folder_items(root: Path, extensions: Sequence[str], skip: Path) -> list[Item]:
    """Audio files (with sidecars) and every other file (rejected not_audio), in sorted order."""
    if not root.is_dir():
        raise FileNotFoundError(f"ingest folder {root} is not a directory")
    exts = {e.lower() for e in extensions}
    paths, errors = _walk(root, skip)
    stems = {(p.parent, p.stem) for p in paths if p.suffix.lower() in exts}
    sidecars: dict[tuple[Path, str], dict[str, Path]] = {}
    for p in paths:
        if p.suffix.lower() in SIDECARS and (p.parent, p.stem) in stems:
            sidecars.setdefault((p.parent, p.stem), {})[p.suffix.lower()] = p
    items = []
    for p in paths:
        rel = p.relative_to(root).as_posix()
        if p.suffix.lower() in exts:
            meta, lrc, notes = read_sidecars(sidecars.get((p.parent, p.stem), {}))
            items.append(Item(str(p), _song_id(meta, rel), p, meta, lrc, tuple(notes)))
        elif not (p.suffix.lower() in SIDECARS and (p.parent, p.stem) in stems):
            why = "a symlinked folder (not followed)" if p.is_dir() else f"not one of {sorted(exts)}"
            items.append(Item(str(p), "", rejection=Rejection("not_audio", f"{rel} is {why}")))
    for err in errors:
        items.append(Item(str(err.filename), "", rejection=Rejection("unreadable", f"cannot list folder: {err}")))
    return items


def manifest_items(manifest: Path) -> list[Item]:
    """One item per manifest row; relative paths resolve against the manifest's folder."""
    reader = MANIFEST_READERS.get(manifest.suffix.lower())
    if reader is None:
        raise ValueError(f"manifest {manifest}: unsupported format, use one of {sorted(MANIFEST_READERS)}")
    table = reader(manifest)
    if "path" not in table.columns:
        raise ValueError(f"manifest {manifest} has no 'path' column (columns: {list(table.columns)})")
    items = []
    for k, row in enumerate(table.to_dict("records")):
        meta = {c: v for c, v in row.items() if c != "path" and _present(v)}
        if not _present(row["path"]):
            bad = Rejection("bad_row", f"row {k} of the manifest has an empty path")
            items.append(Item(str(manifest), _song_id(meta, "") if "id" in meta else "", rejection=bad))
            continue
        rel = str(row["path"]).strip()
        items.append(Item(str(manifest.parent / rel), _song_id(meta, rel), manifest.parent / rel, meta))
    return items


def track_metadata(item: Item, audio: CorpusAudio) -> tuple[dict, list[str]]:
    """The descriptive TRACK_COLUMNS of an item ("" / NaN / "unknown" when missing) and notes."""
    meta, notes = item.meta, []
    out: dict[str, object] = {k: str(meta[k]).strip() if _present(meta.get(k)) else "" for k in TEXT_FIELDS}
    gender = str(meta["gender"]).strip().lower() if _present(meta.get("gender")) else "unknown"
    if gender not in GENDERS:
        notes.append(f"gender {meta['gender']!r} not recognised")
    out["gender"] = GENDERS.get(gender, "unknown")
    inst = meta.get("instruments")
    names = list(inst) if isinstance(inst, (list, tuple, np.ndarray)) else str(inst or "").split(",")
    out["instruments"] = ",".join(n for n in (str(x).strip() for x in names) if n)
    try:
        tempo = float(meta["tempo_bpm"]) if _present(meta.get("tempo_bpm")) else math.nan
    except (TypeError, ValueError):
        tempo = math.nan
        notes.append(f"tempo_bpm {meta['tempo_bpm']!r} is not a number")
    out["tempo_bpm"] = tempo if math.isfinite(tempo) and tempo > 0 else math.nan
    lyrics = [str(meta[k]).strip() for k in ("lyrics", "txt_lyrics") if _present(meta.get(k))]
    lrc_text = "\n".join(t for _, t in item.lrc if t)
    out["lyrics"] = lrc_text or (lyrics[0] if lyrics else "")  # timed text agrees with lyric_lines
    split = str(meta.get("split", "")).strip().lower()
    if split and split not in SPLITS:
        notes.append(f"split {meta['split']!r} not one of {SPLITS}; assigned by hash")
    fallback = assign_split(item.song_id, audio.split_fractions, audio.seed)
    out["split"] = split if split in SPLITS else fallback
    return out, notes
