"""How one generated song's musical thought is laid out for the LM (the idea of paper Figure 2), as pdf and png.

    python -m musicot.report.thought_layout --thoughts results/generate/musicot/thoughts.parquet \
        [--prompt PID] [--levels-codebook K] \
        --out results/figures/thought_layout.pdf results/figures/thought_layout.png

Top: the thought as a grid of M frames (columns, 10 s each) by L RVQ levels (rows, coarse at
the top), each cell its code, coloured by level, with the sequence position it takes. Bottom:
the same codes as the LM reads them, flattened coarse to fine by
`musicot.rvq.codes.flatten_coarse_to_fine` (all M codes of level 1, then level 2, ...),
followed by the markers that hand over to the audio tokens. With --levels-codebook K the
sequence shows vocabulary ids (level k code c -> k * K + c, `to_vocab_ids`), as the LM's
embedding table sees them; without it the plain codes.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from musicot.report.figures import save_figure
from musicot.rvq.codes import flatten_coarse_to_fine, to_vocab_ids

MARKERS = ("<cot_eos>", "<aud_bos>", "audio tokens ...")
MAX_ARROWS = 48  # beyond this many cells, arrows only clutter: the position labels carry the mapping


def pick_prompt(thoughts: pd.DataFrame, prompt_id: str = "") -> str:
    """`prompt_id` if the thoughts hold it, else (empty) the first prompt_id in sorted order."""
    known = sorted(thoughts["prompt_id"].astype(str).unique())
    if not known:
        raise ValueError("thoughts.parquet has no rows: was it written by the base system (no thought)?")
    if prompt_id and prompt_id not in known:
        shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise ValueError(f"prompt {prompt_id!r} has no thought ({shown})")
    return prompt_id or known[0]


def thought_grid(thoughts: pd.DataFrame, prompt_id: str) -> np.ndarray:
    """(M frames, L levels) int codes of one song; raises when a (frame, level) cell is missing."""
    rows = thoughts[thoughts["prompt_id"].astype(str) == prompt_id]
    grid = rows.pivot(index="frame", columns="level", values="code").sort_index().sort_index(axis=1)
    levels = list(grid.columns)
    gaps = levels != list(range(levels[0], levels[0] + len(levels))) if levels else True
    if gaps or grid.isna().any().any() or len(grid) != grid.index.max() + 1:
        raise ValueError(f"the thought of {prompt_id!r} lacks some (frame, level) codes: not a full M x L grid")
    return grid.to_numpy(dtype=np.int64)


def sequence_layout(codes: np.ndarray, codebook_size: int | None = None) -> pd.DataFrame:
    """position, frame, level (0-based), code, token of each thought token in the LM's order.

    The order is the project's own `flatten_coarse_to_fine`, applied to the cell indices so
    each position says which cell it came from; token is the vocabulary id with a codebook
    size, else the code.
    """
    n_frames, n_levels = codes.shape
    cells = flatten_coarse_to_fine(np.arange(codes.size).reshape(n_frames, n_levels))
    frame, level = np.divmod(cells, n_levels)
    tokens = flatten_coarse_to_fine(to_vocab_ids(codes, codebook_size) if codebook_size else codes)
    return pd.DataFrame(
        {
            "position": np.arange(codes.size),
            "frame": frame,
            "level": level,
            "code": codes[frame, level],
            "token": tokens,
        }
    )


def plot_layout(codes: np.ndarray, paths: Sequence[Path], title: str = "", codebook_size: int | None = None) -> Figure:
    """Draw the grid and its flattened sequence (see the module docstring) into every path."""
    n_frames, n_levels = codes.shape
    layout = sequence_layout(codes, codebook_size)
    n_seq = len(layout)
    marker_w = 2.5
    width = n_seq + marker_w * len(MARKERS) + 0.5
    grid_x0 = max(0.0, (width - n_frames * 1.6) / 2)  # grid cells are wider than sequence boxes, centred above
    grid_y0 = 3.0  # the grid's lowest row; the sequence sits at y in [0, 1]
    fig = Figure(figsize=(max(6.0, 0.32 * width + 1), 1.2 + 0.45 * n_levels + 1.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colours = [f"C{k % 10}" for k in range(n_levels)]

    def cell_xy(frame: int, level: int) -> tuple[float, float]:  # lower-left corner, level 1 on top
        return grid_x0 + 1.6 * frame, grid_y0 + (n_levels - 1 - level)

    for t in layout.itertuples():
        x, y = cell_xy(t.frame, t.level)
        ax.add_patch(Rectangle((x, y), 1.6, 1, facecolor=colours[t.level], alpha=0.35, edgecolor="white"))
        ax.text(x + 0.8, y + 0.58, str(t.code), ha="center", va="center", fontsize=7)
        ax.text(x + 1.55, y + 0.08, f"#{t.position}", ha="right", va="bottom", fontsize=5, color="0.3")
        ax.add_patch(Rectangle((t.position, 0), 1, 1, facecolor=colours[t.level], alpha=0.35, edgecolor="white"))
        label = str(t.token)
        ax.text(
            t.position + 0.5, 0.5, label, ha="center", va="center", fontsize=6, rotation=90 if len(label) > 2 else 0
        )
        ax.text(t.position + 0.5, -0.15, str(t.position), ha="center", va="top", fontsize=5, color="0.3")
        if n_seq <= MAX_ARROWS:
            ax.annotate(
                "",
                xy=(t.position + 0.5, 1.02),
                # from the grid's lower edge, each level at its own offset under its frame's column
                xytext=(x + 0.2 + 1.2 * (t.level + 0.5) / n_levels, grid_y0),
                arrowprops={"arrowstyle": "->", "color": colours[t.level], "alpha": 0.35, "linewidth": 0.6},
            )
    for i, marker in enumerate(MARKERS):
        x = n_seq + 0.25 + marker_w * i
        ax.add_patch(Rectangle((x, 0), marker_w - 0.1, 1, facecolor="0.9", edgecolor="0.6"))
        ax.text(x + marker_w / 2, 0.5, marker, ha="center", va="center", fontsize=6)
    for level in range(n_levels):
        ax.text(grid_x0 - 0.2, cell_xy(0, level)[1] + 0.5, f"level {level + 1}", ha="right", va="center", fontsize=7)
    for frame in range(n_frames):
        ax.text(cell_xy(frame, 0)[0] + 0.8, grid_y0 + n_levels + 0.1, f"frame {frame}", ha="center", fontsize=7)
    what = "vocabulary ids" if codebook_size else "codes"
    ax.text(0, 1.25, f"LM sequence, coarse to fine ({what}; position below)", fontsize=7, va="bottom")
    ax.set_xlim(-0.5, width)
    ax.set_ylim(-0.8, grid_y0 + n_levels + 0.7)
    ax.axis("off")
    ax.set_title(title or f"musical thought: {n_frames} frames x {n_levels} levels", fontsize=10)
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thoughts", type=Path, required=True, help="results/generate/musicot/thoughts.parquet")
    parser.add_argument("--prompt", default="", help="prompt_id to draw (default: the first in sorted order)")
    parser.add_argument("--levels-codebook", type=int, help="codebook size K: show vocabulary ids k * K + code")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    thoughts = pd.read_parquet(args.thoughts)
    prompt = pick_prompt(thoughts, args.prompt)
    codes = thought_grid(thoughts, prompt)
    plot_layout(
        codes,
        args.out,
        f"musical thought of {prompt}: {codes.shape[0]} frames x {codes.shape[1]} levels",
        args.levels_codebook,
    )


if __name__ == "__main__":
    main()
