"""Collect every preprocessing step's quality rows and rejections into one table each.

    python -m musicot.prep.quality --quality results/prep/*_quality.csv \
        --rejected results/prep/*_rejected.tsv --out results/prep/quality.csv --out-rejected results/prep/rejected.tsv

`rejected.tsv` is what later stages read to leave a song out: one row per (song, step).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from musicot.data.table import frame
from musicot.prep.common import PREP_REJECT_COLUMNS, QUALITY_COLUMNS


def collect(quality: list[Path], rejected: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenated quality rows (in step order given) and rejections."""
    q = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in quality], ignore_index=True)
    r = [pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False) for p in rejected]
    q["note"] = q["note"].fillna("")
    return frame(q, QUALITY_COLUMNS), frame(pd.concat(r, ignore_index=True), PREP_REJECT_COLUMNS)


def excluded_songs(rejected_tsv: Path | str) -> set[str]:
    """Songs any preprocessing step rejected: later stages leave them out."""
    return set(pd.read_csv(rejected_tsv, sep="\t", dtype=str, keep_default_na=False)["song_id"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", type=Path, nargs="+", required=True)
    parser.add_argument("--rejected", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--out-rejected", type=Path, required=True)
    args = parser.parse_args(argv)
    quality, rejected = collect(args.quality, args.rejected)
    quality.to_csv(args.out, index=False)
    rejected.to_csv(args.out_rejected, sep="\t", index=False)
    print(quality.to_string(index=False))
    print(f"{len(rejected)} rejections over {rejected['song_id'].nunique()} songs")


if __name__ == "__main__":
    main()
