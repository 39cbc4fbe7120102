"""Ingest inputs: folder walks, manifest rows, sidecar metadata, LRC lyrics and song ids.

Everything here happens before any audio is decoded: it decides what the inputs are, what
we know about them, and which ones are already rejected (bad ids, duplicates, non-audio).
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
TEXT_FIELDS = ("caption", "genre", "subgenre", "mood", "key")
GENDERS = {"male": "male", "female": "female", "none": "none", "instrumental": "none", "unknown": "unknown"}
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SLUG_MAX_CHARS = 48
ID_HASH_HEX = 8
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


def claim_ids(items: list[Item]) -> list[Item]:
    """Reject bad and repeated ids in input order; the first holder keeps an id."""
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
    return out


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
