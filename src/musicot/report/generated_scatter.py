"""Anchor similarity against separated stem volume of generated songs, one panel per anchor, as pdf and png.

    python -m musicot.report.generated_scatter --windows results/metrics/analyzability_windows.parquet \
        [--table results/metrics/analyzability.csv] [--min-songs 10] \
        --out results/figures/generated_scatter.pdf results/figures/generated_scatter.png

Each point is one thought frame of one generated song: x the separated stem's mean RMS over the
frame's window, y the cosine of the de-quantized frame with the anchor's text. Only the windows
the analysis kept are drawn (a (song, stem) it left out as too quiet has NaN volume). The panel
title gives the pooled Pearson r with its songs and windows: from --table (the metric's own
row) when given, else computed here from the same points.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.clap.data import ANCHORS
from musicot.metrics.correlation import pearson
from musicot.report.figures import save_figure


def kept_points(windows: pd.DataFrame, anchor: str) -> pd.DataFrame:
    """prompt_id, frame, volume, sim of the windows with a kept volume and a similarity for `anchor`."""
    points = windows[["prompt_id", "frame", f"volume_{anchor}", f"sim_{anchor}"]]
    points = points.rename(columns={f"volume_{anchor}": "volume", f"sim_{anchor}": "sim"}).dropna()
    return points.reset_index(drop=True)


def pooled_stats(points: pd.DataFrame) -> dict:
    """r_pooled, n_songs, n_windows of kept points (r NaN with fewer than 3 points or a constant column)."""
    x, y = points["volume"].to_numpy(float), points["sim"].to_numpy(float)
    return {
        "r_pooled": pearson(x, y),
        "n_songs": int(points["prompt_id"].nunique()),
        "n_windows": len(points),
    }


def panel_title(anchor: str, stats: dict, min_songs: int = 10) -> str:
    """'<anchor>: r = 0.42' over '(3 songs, 12 windows)', marked when the table says it rests on few songs."""
    r = stats["r_pooled"]
    r_text = "n/a" if r is None or pd.isna(r) else f"{float(r):.2f}"
    title = f"{anchor}: r = {r_text}\n({int(stats['n_songs'])} songs, {int(stats['n_windows'])} windows)"
    if _truthy(stats.get("few_songs", False)):
        title += f"\n(fewer than {min_songs} songs)"
    return title


def _truthy(value) -> bool:
    """few_songs as read back from CSV: a bool, or the strings True/False."""
    return str(value).strip().lower() in ("true", "1")


def anchor_stats(table: pd.DataFrame | None, anchor: str, points: pd.DataFrame) -> dict:
    """The analyzability table's row of `anchor` (stems = separated when the column is there), else computed."""
    if table is not None:
        rows = table[table["anchor"].astype(str) == anchor]
        if "stems" in rows:
            rows = rows[rows["stems"].astype(str) == "separated"]
        if len(rows):
            return rows.iloc[0].to_dict()
    return pooled_stats(points)


def plot_scatter(
    windows: pd.DataFrame,
    paths: Sequence[Path],
    table: pd.DataFrame | None = None,
    anchors: Sequence[str] = ANCHORS,
    min_songs: int = 10,
) -> Figure:
    """One panel per anchor: kept (volume, similarity) points under their r and counts."""
    fig = Figure(figsize=(3.2 * len(anchors), 3.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(anchors), squeeze=False)[0]
    for ax, anchor in zip(axes, anchors, strict=True):
        points = kept_points(windows, anchor)
        ax.scatter(points["volume"], points["sim"], s=10, alpha=0.6, color="C0", linewidths=0)
        ax.set_title(panel_title(anchor, anchor_stats(table, anchor, points), min_songs), fontsize=8)
        ax.set_xlabel("separated stem RMS (window mean)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cos(thought frame, anchor text)", fontsize=8)
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=Path, required=True, help="results/metrics/analyzability_windows.parquet")
    parser.add_argument("--table", type=Path, help="results/metrics/analyzability.csv (r and counts per anchor)")
    parser.add_argument("--min-songs", type=int, default=10, help="evaluate.min_songs, named in the few-songs mark")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    table = pd.read_csv(args.table) if args.table else None
    plot_scatter(pd.read_parquet(args.windows), args.out, table, min_songs=args.min_songs)


if __name__ == "__main__":
    main()
