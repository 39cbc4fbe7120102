"""Ingest real audio (a folder tree or a manifest table) into a corpus part directory.

Every input ends up in exactly one of two places: rows of ``tracks.parquet`` (decoded,
checked by `musicot.data.checks`, made stereo, resampled, loudness-normalised and written as
16-bit FLAC) or a row of ``rejected.tsv`` with a reason code. A recording longer than
`max_duration_s` is split into equal parts (ids ``<id>-p00``, ``<id>-p01``, ...), trimmed or
rejected (`long_files`). Decoding runs in parallel, but ids and duplicates are decided in input
order so results do not depend on it.

Memory is bounded by `max_duration_s`, whatever a file's length: a file is decoded once, front
to back in blocks; the checks run on the blocks, and the same pass feeds the track (or part)
being built, resampled to the corpus rate block by block. A worker holds one track at a time.

Run as ``python -m musicot.data.ingest --config config.yaml --out PART_DIR`` (or ``--kind folder
--path DIR`` over the defaults).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from musicot.audio import SequentialSoundFile
from musicot.config import ConfigError, build, load_config, validate
from musicot.data.checks import Rejection, check_open, open_audio
from musicot.data.sources import (
    LONG_FILES,
    PART_ID,
    Item,
    claim_ids,
    folder_items,
    lyric_lines,
    manifest_items,
    part_item,
    plan_parts,
    track_metadata,
)
from musicot.data.table import (
    LINE_COLUMNS,
    REJECT_COLUMNS,
    TRACK_COLUMNS,
    CorpusAudio,
    frame,
    process_cpu_seconds,
    write_part,
)
from musicot.data.track_writer import Outcome, PartChecks, PartWriter, Processed, mix_path

try:  # a progress bar is a nicety, not a dependency
    from tqdm import tqdm
except ImportError:  # pragma: no cover - depends on the environment
    tqdm = None

log = logging.getLogger("musicot.data.ingest")  # same name when run with -m

KINDS = ("folder", "manifest")
MULTICHANNEL = ("reject", "downmix")
STEREO = 2


@dataclass(frozen=True)
class IngestConfig:
    """Where real audio comes from and which inputs are acceptable (config ``corpus.ingest``)."""

    kind: str  # "folder" | "manifest"
    path: str  # folder root, or manifest file (.csv, .tsv, .jsonl, .parquet)
    extensions: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
    min_duration_s: float = 5.0
    max_duration_s: float = 600.0  # longest track; also what bounds a worker's memory
    long_files: str = "split"  # longer recordings: "split" (equal parts), "trim" or "reject" (too_long)
    silence_dbfs: float = -60.0  # RMS below this is "silent"
    multichannel: str = "reject"  # >2 channels: "reject" or "downmix" (mean of all channels to stereo)

    @classmethod
    def from_config(cls, config: Mapping) -> IngestConfig:
        """From a validated config: `corpus.source` is the kind, `corpus.ingest` the rest."""
        corpus = config["corpus"]
        if corpus["source"] not in KINDS:
            raise ConfigError(f"corpus.source is {corpus['source']!r}; ingest handles {KINDS}")
        if not corpus["ingest"]["path"]:
            raise ConfigError(f"corpus.source={corpus['source']} needs corpus.ingest.path")
        cfg = build(cls, {"kind": corpus["source"], **corpus["ingest"]})
        cfg.check()
        return cfg

    def check(self) -> None:
        """Raise ConfigError for values no schema can rule out on its own."""
        for key, value, allowed in (
            ("corpus.source", self.kind, KINDS),
            ("corpus.ingest.multichannel", self.multichannel, MULTICHANNEL),
            ("corpus.ingest.long_files", self.long_files, LONG_FILES),
        ):
            if value not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {value!r}")
        if not (self.max_duration_s > 0 and math.isfinite(self.max_duration_s)):
            raise ConfigError(f"corpus.ingest.max_duration_s must be a positive number, got {self.max_duration_s!r}")
        if self.long_files == "split" and self.max_duration_s < 2 * self.min_duration_s:
            raise ConfigError(
                f"corpus.ingest.max_duration_s ({self.max_duration_s:g}) must be at least twice min_duration_s "
                f"({self.min_duration_s:g}) with long_files=split: a split part can be just over half of it"
            )


def _process_open(
    f: SequentialSoundFile, song_id: str, cfg: IngestConfig, audio: CorpusAudio, out_dir: Path
) -> Rejection | tuple[Outcome, ...]:
    # The header's length is exact for every file that passes (a shorter decode is `truncated`),
    # so the tracks are planned before decoding, and a too_long rejection decodes nothing.
    plan = plan_parts(song_id, f.frames, int(f.samplerate), cfg.max_duration_s, cfg.long_files)
    if isinstance(plan, Rejection):
        return plan
    writer = PartWriter(plan, f.channels, PartChecks(cfg.min_duration_s, cfg.silence_dbfs), audio, out_dir)
    try:
        scanned = check_open(f, cfg.min_duration_s, cfg.silence_dbfs, writer.push)
        if isinstance(scanned, Rejection):
            writer.discard()
            return scanned
        return writer.finish(scanned)
    except BaseException:
        writer.discard()
        raise


def process_file(
    job: tuple[str, str], cfg: IngestConfig, audio: CorpusAudio, out_dir: Path
) -> Rejection | tuple[Outcome, ...]:
    """Check, normalise and write one recording's tracks; any exception becomes an `unreadable` rejection."""
    path, song_id = job
    try:
        opened = open_audio(Path(path), cfg.multichannel == "downmix")
        if isinstance(opened, Rejection):
            return opened
        with opened as f:
            return _process_open(f, song_id, cfg, audio, out_dir)
    except Exception as exc:  # one bad file must never take the run down
        return Rejection("unreadable", f"processing failed: {type(exc).__name__}: {exc}")


def _progress(it: Iterable, total: int) -> Iterable:
    if tqdm is None:
        return it
    return tqdm(it, total=total, desc="ingest", unit="file", disable=None)  # None: off when not a TTY


def run_jobs(jobs: Sequence[tuple[str, str]], fn: Callable, workers: int) -> list[Rejection | tuple[Outcome, ...]]:
    """fn over jobs, in a process pool when workers > 1; results come back in job order."""
    if workers <= 1:
        return [fn(job) for job in _progress(jobs, len(jobs))]
    results: list[Rejection | tuple[Outcome, ...] | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, job): k for k, job in enumerate(jobs)}
        for fut in _progress(as_completed(futures), len(jobs)):
            k = futures[fut]
            try:
                results[k] = fut.result()
            except Exception as exc:  # e.g. a worker killed by a crash in a decoder
                results[k] = Rejection("unreadable", f"worker failed: {type(exc).__name__}: {exc}")
    return results  # type: ignore[return-value]


def collect_items(cfg: IngestConfig, out_dir: Path) -> list[Item]:
    """All inputs in a deterministic order, with the rejections known before decoding set."""
    if cfg.kind == "folder":
        items = folder_items(Path(cfg.path), tuple(cfg.extensions), skip=out_dir)
    else:
        items = manifest_items(Path(cfg.path))
    return claim_ids(items, reserve_part_ids=cfg.long_files == "split")


def _track_row(
    item: Item, song_id: str, done: Processed, cfg: IngestConfig, audio: CorpusAudio, out_dir: Path, timed: bool
) -> dict:
    meta, meta_notes = track_metadata(item, audio)  # by the recording's id: every part lands in one split
    return {
        "song_id": song_id,
        "source": cfg.kind,
        "source_path": item.source_path,
        "audio_path": str(mix_path(out_dir, song_id)),
        "stems_dir": "",
        "sample_rate": audio.sample_rate,
        "channels": STEREO,
        "duration_s": done.duration_s,
        **meta,
        "lyrics_timed": timed,
        "gain_db": done.gain_db,
        "content_sha1": done.content_sha1,
        "notes": "; ".join([*item.notes, *meta_notes, *done.notes]),
    }


def _remove_audio(out_dir: Path, song_id: str) -> None:
    """Delete a recording's track folder or its parts' (`claim_ids` keeps other inputs off part ids)."""
    for folder in (out_dir / "audio").glob(f"{song_id}*"):
        base = PART_ID.match(folder.name)
        if folder.name == song_id or (base is not None and base.group(1) == song_id):
            shutil.rmtree(folder, ignore_errors=True)


def ingest(cfg: IngestConfig, audio: CorpusAudio, out_dir: Path, workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest every input of `cfg` into the part directory `out_dir`; returns (tracks, rejected)."""
    cfg.check()
    out_dir, cpu0, wall0 = Path(out_dir), process_cpu_seconds(), time.perf_counter()
    items = collect_items(cfg, out_dir)
    shutil.rmtree(out_dir / "audio", ignore_errors=True)  # the part must reflect this run only
    todo = [(str(item.path), item.song_id) for item in items if item.rejection is None]
    fn = partial(process_file, cfg=cfg, audio=audio, out_dir=out_dir)
    results = iter(run_jobs(todo, fn, max(1, workers)))

    tracks, lines, rejected, first_with = [], [], [], {}

    def reject(item: Item, song_id: str, why: Rejection) -> None:
        rejected.append({"source_path": item.source_path, "song_id": song_id, **vars(why)})
        log.warning("rejected %s [%s]: %s", item.source_path, why.reason, why.detail)

    for item in items:  # input order, so duplicates resolve the same way for any worker count
        result = item.rejection or next(results)
        if isinstance(result, Rejection):
            if item.rejection is None:  # a worker that died may have written some parts first
                _remove_audio(out_dir, item.song_id)
            reject(item, item.song_id, result)
            continue
        for part, done in ((o.part, o.result) for o in result):
            if isinstance(done, Processed) and done.content_sha1 in first_with:
                shutil.rmtree(mix_path(out_dir, part.song_id).parent, ignore_errors=True)
                done = Rejection("duplicate_audio", f"decodes to the same samples as {first_with[done.content_sha1]}")
            if isinstance(done, Rejection):
                reject(item, part.song_id, done)
                continue
            first_with[done.content_sha1] = f"{item.source_path} ({part.song_id})"
            piece = part_item(item, part.offset_s, done.duration_s, split=part.count > 1)
            song_lines = lyric_lines(part.song_id, piece.lrc, done.duration_s)
            tracks.append(_track_row(piece, part.song_id, done, cfg, audio, out_dir, bool(song_lines)))
            lines.extend(song_lines)
    tracks_df, rejected_df = frame(tracks, TRACK_COLUMNS), frame(rejected, REJECT_COLUMNS)
    write_part(out_dir, {"tracks.parquet": tracks_df, "lyric_lines.parquet": frame(lines, LINE_COLUMNS)}, rejected_df)
    stats = {"songs": len(tracks), "rejected": len(rejected), "cpu_s": process_cpu_seconds() - cpu0}
    stats["wall_s"] = time.perf_counter() - wall0
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2))  # merge sums cpu_s over parts
    return tracks_df, rejected_df


def summary(tracks: pd.DataFrame, rejected: pd.DataFrame) -> str:
    """'N accepted, M rejected (reason: count, ...)', most frequent reason first."""
    counts = Counter(rejected["reason"]).most_common()
    text = f"{len(tracks)} accepted, {len(rejected)} rejected"
    return text + (" (" + ", ".join(f"{r}: {n}" for r, n in counts) + ")" if counts else "")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m musicot.data.ingest", description=__doc__.splitlines()[0])
    p.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    p.add_argument("--kind", choices=KINDS, help="overrides corpus.source")
    p.add_argument("--path", help="overrides corpus.ingest.path (folder root or manifest file)")
    p.add_argument("--out", required=True, type=Path, help="part directory to write")
    p.add_argument("--workers", type=int, default=1, help="decode processes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the one-line summary."""
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(a.config)
    if a.kind or a.path:
        config["corpus"]["source"] = a.kind or config["corpus"]["source"]
        config["corpus"]["ingest"]["path"] = a.path or config["corpus"]["ingest"]["path"]
        config = validate(config)
    tracks, rejected = ingest(IngestConfig.from_config(config), CorpusAudio.from_config(config), a.out, a.workers)
    print(summary(tracks, rejected))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
