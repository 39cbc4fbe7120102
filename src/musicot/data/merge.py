"""Merge corpus part directories into the song table every later stage reads.

    python -m musicot.data.merge --parts results/corpus/synth/shard0 ... --out results/corpus

Writes the part tables concatenated, `rejected.tsv`, and `summary.csv` (songs, minutes,
CPU time to build, disk size per split), and refuses parts that disagree (duplicate ids,
missing audio) with a message naming the part.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pandas as pd

from musicot.data.table import PART_TABLES, REJECT_COLUMNS, frame, read_part

log = logging.getLogger("musicot.data.merge")


def merge_parts(parts: list[Path], out_dir: Path) -> dict[str, pd.DataFrame]:
    """Concatenate parts into `out_dir`; return the merged tables (plus 'rejected' and 'summary')."""
    merged: dict[str, list[pd.DataFrame]] = {name: [] for name in PART_TABLES}
    rejected, cpu_s = [], 0.0
    for part in parts:
        tables, rej = read_part(part)
        for name, df in tables.items():
            merged[name].append(df)
        rejected.append(rej)
        stats = part / "stats.json"
        cpu_s += json.loads(stats.read_text())["cpu_s"] if stats.exists() else 0.0
    out = {name: frame(pd.concat(dfs, ignore_index=True), PART_TABLES[name]) for name, dfs in merged.items()}
    tracks = out["tracks.parquet"].sort_values("song_id", ignore_index=True)
    _check_tracks(tracks)
    out["tracks.parquet"] = tracks
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, df in out.items():
        df.to_parquet(out_dir / name, index=False)
    rejected_df = frame(pd.concat(rejected, ignore_index=True), REJECT_COLUMNS)
    rejected_df.to_csv(out_dir / "rejected.tsv", sep="\t", index=False)
    summary = summarize(tracks, rejected_df, cpu_s)
    summary.to_csv(out_dir / "summary.csv", index=False)
    log.info("corpus: %d songs, %d rejected", len(tracks), len(rejected_df))
    return {**out, "rejected": rejected_df, "summary": summary}


def _check_tracks(tracks: pd.DataFrame) -> None:
    dup = tracks["song_id"][tracks["song_id"].duplicated()]
    if len(dup):
        raise ValueError(f"song ids occur in more than one part: {sorted(set(dup))[:5]}")
    missing = [p for p in tracks["audio_path"] if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} songs in the table have no audio file, e.g. {missing[0]}")


def song_disk_bytes(track: pd.Series) -> int:
    """Bytes of a song's mix plus its stems."""
    folder = Path(track["stems_dir"]) if track["stems_dir"] else None
    files = list(folder.glob("*.flac")) if folder else [Path(track["audio_path"])]
    return sum(f.stat().st_size for f in files)


def summarize(tracks: pd.DataFrame, rejected: pd.DataFrame, cpu_s: float) -> pd.DataFrame:
    """One row per split plus 'all': songs, minutes, vocal songs, disk MB; build CPU time on 'all'."""
    df = tracks.assign(disk=[song_disk_bytes(t) for _, t in tracks.iterrows()])
    rows = []
    for split, group in [*df.groupby("split", sort=True), ("all", df)]:
        rows.append(
            dict(
                split=split,
                songs=len(group),
                minutes=round(group["duration_s"].sum() / 60, 2),
                vocal_songs=int((group["lyrics"] != "").sum()),
                disk_mb=round(group["disk"].sum() / 2**20, 1),
                rejected=len(rejected) if split == "all" else 0,
                build_cpu_s=round(cpu_s, 1) if split == "all" else float("nan"),
            )
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=Path, nargs="+", required=True, help="part directories")
    parser.add_argument("--out", type=Path, required=True, help="corpus directory to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    merge_parts(args.parts, args.out)


if __name__ == "__main__":
    main()
