"""Ingest real audio (a folder tree or a manifest table) into a corpus part directory.

Every input ends up in exactly one of two places: a row of ``tracks.parquet`` (decoded,
checked by `musicot.data.checks`, made stereo, resampled, trimmed, loudness-normalised and
written as 16-bit FLAC) or a row of ``rejected.tsv`` with a reason code. Decoding runs in
parallel, but ids and duplicates are decided in input order so results do not depend on it.

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

import numpy as np
import pandas as pd

from musicot.audio import loudness_gain, resample, to_stereo, write_flac
from musicot.config import ConfigError, build, load_config, validate
from musicot.data.checks import Decoded, Rejection, check_audio
from musicot.data.sources import Item, claim_ids, folder_items, lyric_lines, manifest_items, track_metadata
from musicot.data.table import (
    LINE_COLUMNS,
    REJECT_COLUMNS,
    TRACK_COLUMNS,
    CorpusAudio,
    frame,
    process_cpu_seconds,
    write_part,
)

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
    max_duration_s: float | None = None  # longer input is trimmed (recorded in notes), not rejected
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
        return build(cls, {"kind": corpus["source"], **corpus["ingest"]})


@dataclass(frozen=True)
class Processed:
    """What a worker sends back for an accepted file (the audio itself is already on disk)."""

    duration_s: float
    gain_db: float
    content_sha1: str
    notes: tuple[str, ...]


# --- decoding and normalising (runs in worker processes) ---------------------------------------


def mix_path(out_dir: Path, song_id: str) -> Path:
    """Where a song's normalised mix lives inside the part directory."""
    return out_dir / "audio" / song_id / "mix.flac"


def normalise(
    decoded: Decoded, max_duration_s: float | None, audio: CorpusAudio
) -> tuple[np.ndarray, float, list[str]]:
    """Stereo, trimmed, resampled, loudness-normalised audio, its gain in dB and what was done."""
    x, sr, notes = decoded.audio, decoded.sample_rate, []
    if decoded.channels > STEREO:
        x = x.mean(axis=1, keepdims=True)  # the config promises a plain mean, no channel-layout guessing
        notes.append(f"downmixed {decoded.channels}->{STEREO} channels")
    elif decoded.channels == 1:
        notes.append("mono->stereo")
    if max_duration_s is not None and x.shape[0] > round(max_duration_s * sr):
        x = x[: round(max_duration_s * sr)]  # trim before resampling: no work on discarded audio
        notes.append(f"trimmed {decoded.duration_s:.2f}->{max_duration_s:g} s")
    if sr != audio.sample_rate:
        x = resample(x, sr, audio.sample_rate)
        notes.append(f"resampled {sr}->{audio.sample_rate} Hz")
    x = to_stereo(x)
    gain = loudness_gain(x, audio.sample_rate, audio.loudness_lufs, audio.peak_ceiling)
    gain_db = 20.0 * math.log10(gain)
    notes.append(f"gain {gain_db:+.2f} dB")
    return (x * np.float32(gain)).astype(np.float32), gain_db, notes


def process_file(job: tuple[str, str], cfg: IngestConfig, audio: CorpusAudio, out_dir: Path) -> Processed | Rejection:
    """Check, normalise and write one file; any exception becomes an `unreadable` rejection."""
    path, song_id = job
    try:
        checked = check_audio(Path(path), cfg.min_duration_s, cfg.silence_dbfs, cfg.multichannel == "downmix")
        if isinstance(checked, Rejection):
            return checked
        mix, gain_db, notes = normalise(checked, cfg.max_duration_s, audio)
        write_flac(mix_path(out_dir, song_id), mix, audio.sample_rate)
        return Processed(mix.shape[0] / audio.sample_rate, gain_db, checked.content_sha1, tuple(notes))
    except Exception as exc:  # one bad file must never take the run down
        return Rejection("unreadable", f"processing failed: {type(exc).__name__}: {exc}")


def _progress(it: Iterable, total: int) -> Iterable:
    if tqdm is None:
        return it
    return tqdm(it, total=total, desc="ingest", unit="file", disable=None)  # None: off when not a TTY


def run_jobs(jobs: Sequence[tuple[str, str]], fn: Callable, workers: int) -> list[Processed | Rejection]:
    """fn over jobs, in a process pool when workers > 1; results come back in job order."""
    if workers <= 1:
        return [fn(job) for job in _progress(jobs, len(jobs))]
    results: list[Processed | Rejection | None] = [None] * len(jobs)
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
        return claim_ids(folder_items(Path(cfg.path), tuple(cfg.extensions), skip=out_dir))
    return claim_ids(manifest_items(Path(cfg.path)))


def _track_row(item: Item, done: Processed, cfg: IngestConfig, audio: CorpusAudio, out_dir: Path, timed: bool) -> dict:
    meta, meta_notes = track_metadata(item, audio)
    return {
        "song_id": item.song_id,
        "source": cfg.kind,
        "source_path": item.source_path,
        "audio_path": str(mix_path(out_dir, item.song_id)),
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


def ingest(cfg: IngestConfig, audio: CorpusAudio, out_dir: Path, workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ingest every input of `cfg` into the part directory `out_dir`; returns (tracks, rejected)."""
    if cfg.kind not in KINDS:
        raise ValueError(f"ingest kind must be one of {KINDS}, got {cfg.kind!r}")
    if cfg.multichannel not in MULTICHANNEL:
        raise ValueError(f"ingest multichannel must be one of {MULTICHANNEL}, got {cfg.multichannel!r}")
    out_dir, cpu0, wall0 = Path(out_dir), process_cpu_seconds(), time.perf_counter()
    items = collect_items(cfg, out_dir)
    shutil.rmtree(out_dir / "audio", ignore_errors=True)  # the part must reflect this run only
    todo = [(str(item.path), item.song_id) for item in items if item.rejection is None]
    fn = partial(process_file, cfg=cfg, audio=audio, out_dir=out_dir)
    outcomes = iter(run_jobs(todo, fn, max(1, workers)))

    tracks, lines, rejected, first_with = [], [], [], {}
    for item in items:  # input order, so duplicates resolve the same way for any worker count
        outcome = item.rejection or next(outcomes)
        if isinstance(outcome, Processed) and outcome.content_sha1 in first_with:
            shutil.rmtree(mix_path(out_dir, item.song_id).parent, ignore_errors=True)
            outcome = Rejection("duplicate_audio", f"decodes to the same samples as {first_with[outcome.content_sha1]}")
        if isinstance(outcome, Rejection):
            rejected.append({"source_path": item.source_path, "song_id": item.song_id, **vars(outcome)})
            log.warning("rejected %s [%s]: %s", item.source_path, outcome.reason, outcome.detail)
            continue
        first_with[outcome.content_sha1] = f"{item.source_path} ({item.song_id})"
        song_lines = lyric_lines(item.song_id, item.lrc, outcome.duration_s)
        tracks.append(_track_row(item, outcome, cfg, audio, out_dir, bool(song_lines)))
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
