"""What every preprocessing step shares: reading the song table, writing quality and rejections.

A step reads ``results/corpus/tracks.parquet`` (and the truth tables beside it), writes its
own table, a quality CSV scored against truth where truth exists, and a rejection TSV for
songs it could not process (those are excluded downstream, never silently dropped).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from musicot.data.table import frame

QUALITY_COLUMNS = {"step": "string", "metric": "string", "value": "float64", "n": "int64", "note": "string"}
PREP_REJECT_COLUMNS = {"song_id": "string", "step": "string", "reason": "string", "detail": "string"}

log = logging.getLogger("musicot.prep")


def load_tracks(tracks_path: Path | str, splits: Iterable[str] | None = None) -> pd.DataFrame:
    """The song table, optionally restricted to some splits, in song_id order."""
    tracks = pd.read_parquet(tracks_path)
    if splits is not None:
        tracks = tracks[tracks["split"].isin(list(splits))]
    return tracks.sort_values("song_id", ignore_index=True)


def load_truth(tracks_path: Path | str, name: str) -> pd.DataFrame:
    """A corpus truth table next to tracks.parquet (lyric_words, lyric_lines, sections, stem_volume)."""
    return pd.read_parquet(Path(tracks_path).parent / f"{name}.parquet")


def write_quality(rows: Iterable[Mapping], path: Path | str) -> pd.DataFrame:
    """Write quality rows (step, metric, value, n, note) as CSV and return them."""
    df = frame(list(rows), QUALITY_COLUMNS)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def write_rejected(rows: Iterable[Mapping], path: Path | str) -> pd.DataFrame:
    """Write the songs a step could not process (song_id, step, reason, detail); logs each one."""
    df = frame(list(rows), PREP_REJECT_COLUMNS)
    for r in df.itertuples():
        log.warning("%s rejected %s [%s]: %s", r.step, r.song_id, r.reason, r.detail)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False)
    return df


def step_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The arguments every step CLI shares: --config, --tracks and its three outputs."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    p.add_argument("--tracks", required=True, type=Path, help="results/corpus/tracks.parquet")
    p.add_argument("--out", required=True, type=Path, help="the step's table (parquet) to write")
    p.add_argument("--quality", required=True, type=Path, help="quality CSV to write")
    p.add_argument("--rejected", required=True, type=Path, help="rejection TSV to write")
    return p


def write_step_outputs(
    args: argparse.Namespace, table: pd.DataFrame, quality: Iterable[Mapping], rejected: Iterable[Mapping]
) -> None:
    """Write a step's table, rejections and quality rows where its CLI arguments say; print the quality."""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out, index=False)
    write_rejected(rejected, args.rejected)
    print(write_quality(quality, args.quality).to_string(index=False))
