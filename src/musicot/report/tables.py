"""Write the run's tables as csv, markdown and LaTeX under results/tables/.

    python -m musicot.report.tables --corpus-summary results/corpus/summary.csv --out results/tables

Each later stage adds its table here as one more input; a table is written in all three
formats from one DataFrame so they never disagree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

CORPUS_COLUMNS = {
    "split": "split",
    "songs": "songs",
    "minutes": "minutes",
    "vocal_songs": "with vocals",
    "disk_mb": "disk (MB)",
    "rejected": "rejected inputs",
    "build_cpu_s": "build CPU (s)",
}


def write_table(df: pd.DataFrame, out_dir: Path, name: str, caption: str) -> list[Path]:
    """`name`.csv, .md and .tex in `out_dir`; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex")]
    df.to_csv(paths[0], index=False)
    paths[1].write_text(f"{caption}\n\n{df.to_markdown(index=False)}\n")
    latex = df.style.hide(axis="index").format(precision=2, na_rep="")
    paths[2].write_text(latex.to_latex(caption=caption, label=f"tab:{name}", hrules=True))
    return paths


def corpus_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The corpus summary with readable headers."""
    return summary[list(CORPUS_COLUMNS)].rename(columns=CORPUS_COLUMNS)


def prep_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Preprocessing quality rows, values rounded for reading."""
    return quality.assign(value=quality["value"].round(3))[["step", "metric", "value", "n", "note"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-summary", type=Path, required=True)
    parser.add_argument("--prep-quality", type=Path, help="results/prep/quality.csv")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    summary = pd.read_csv(args.corpus_summary)
    write_table(corpus_table(summary), args.out, "corpus", "Corpus: songs, minutes and build cost per split.")
    if args.prep_quality:
        quality = pd.read_csv(args.prep_quality, keep_default_na=False, na_values=[""])
        write_table(prep_table(quality), args.out, "prep_quality", "Preprocessing scored against corpus truth.")


if __name__ == "__main__":
    main()
