"""The thought timeline: one row per anchor, time on x (the paper's Figure 1 idea), as pdf and png.

    python -m musicot.analysis.timeline --config CFG --windows results/analysis/thought_windows.parquet \
        --out results/figures/thought_timeline.pdf results/figures/thought_timeline.png

The top panel is a heatmap of each window's thought-to-anchor cosine similarity (column
``sim_<anchor>``); when the table has ``volume_truth_<anchor>`` columns a second panel shows the
stem volume of the same windows (one shared RMS scale, so a quiet stem looks quiet), so rises
and falls can be compared by eye. Each similarity row is scaled to its own range: the
correlation the analysis reports is per anchor, and a small CLAP's anchors differ in offset far
more than in their variation over time. `plot_timeline` is shared
with `musicot analyze` (musicot.analysis.song_thought), which draws any audio file.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.analysis.thought import AnalysisConfig
from musicot.config import load_config
from musicot.report.figures import save_figure

log = logging.getLogger("musicot.analysis")


def cell_edges(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """x edges of one cell per window, centred on the window centre, halfway to its neighbours.

    Windows overlap (10 s at a 5 s hop), so each cell stands for its window's centre; a single
    window spans [start, end].
    """
    centres = (np.asarray(start, float) + np.asarray(end, float)) / 2
    if len(centres) == 1:
        return np.array([start[0], end[0]], float)
    mids = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[centres[0] - (mids[0] - centres[0])], mids, [centres[-1] + (centres[-1] - mids[-1])]])


def scale_rows(values: np.ndarray) -> np.ndarray:
    """Each row min-max scaled to [0, 1]; a constant row becomes 0, NaN stays NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row (a stem without volume)
        low = np.nanmin(values, axis=1, keepdims=True)
        span = np.nanmax(values, axis=1, keepdims=True) - low
    scaled = (values - low) / np.where(span > 0, span, 1.0)
    return np.where(span > 0, scaled, np.where(np.isnan(values), np.nan, 0.0))


def plot_timeline(
    table: pd.DataFrame, anchors: Sequence[str], paths: Sequence[Path], title: str = "", volume: str = "volume_truth_"
) -> Figure:
    """Draw the timeline of one song's windows (start, end, sim_<anchor>[, <volume><anchor>]) into every path."""
    if not len(table):
        raise ValueError("no windows to draw")
    table = table.sort_values("start")
    edges = cell_edges(table["start"].to_numpy(), table["end"].to_numpy())
    panels = [("thought: cos(de-quantized window, anchor text)", "sim_", "per-row scale")]
    if all(f"{volume}{a}" in table for a in anchors) and table[[f"{volume}{a}" for a in anchors]].notna().any().any():
        panels.append(("stem volume", volume, "window RMS"))
    fig = Figure(figsize=(max(6.0, 0.12 * len(table) + 3), 0.5 + 0.45 * len(anchors) * len(panels) + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (label, prefix, unit) in zip(axes, panels, strict=True):
        values = table[[f"{prefix}{a}" for a in anchors]].to_numpy(dtype=float).T
        if prefix == "sim_":
            values, top = scale_rows(values), 1.0
        else:  # volumes share one scale, so a quiet stem looks quiet
            top = max(float(np.nanmax(values)), 1e-12)
        mesh = ax.pcolormesh(edges, np.arange(len(anchors) + 1), values, cmap="magma", vmin=0, vmax=top)
        ax.set_yticks(np.arange(len(anchors)) + 0.5, labels=list(anchors))
        ax.invert_yaxis()
        ax.set_title(label, fontsize=9, loc="left")
        fig.colorbar(mesh, ax=ax, pad=0.01, fraction=0.03).set_label(unit, fontsize=7)
    axes[-1].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, paths)
    return fig


def pick_song(table: pd.DataFrame, song_id: str = "") -> str:
    """`song_id` if the table has it, else (empty) the first song in song_id order."""
    songs = sorted(table["song_id"].astype(str).unique())
    if not songs:
        raise ValueError("the per-window table is empty: no analysed windows to draw")
    if song_id and song_id not in songs:
        shown = ", ".join(songs[:5]) + (", ..." if len(songs) > 5 else "")
        raise ValueError(f"analysis.timeline_song {song_id!r} is not among the analysed songs ({shown})")
    return song_id or songs[0]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    parser.add_argument("--windows", type=Path, required=True, help="results/analysis/thought_windows.parquet")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = AnalysisConfig.from_config(load_config(args.config))
    table = pd.read_parquet(args.windows)
    song = pick_song(table, cfg.timeline_song)
    rows = table[table["song_id"].astype(str) == song]
    plot_timeline(rows, cfg.anchors, args.out, title=f"musical thought of {song} ({rows['split'].iloc[0]})")
    log.info("drew %s (%d windows) into %s", song, len(rows), ", ".join(map(str, args.out)))


if __name__ == "__main__":
    main()
