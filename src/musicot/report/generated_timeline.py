"""Generated songs' drawn thought against their separated stems' volume (paper Figures 1 and 3), as pdf and png.

    python -m musicot.report.generated_timeline --windows results/metrics/analyzability_windows.parquet \
        --volume results/metrics/generated_volume.parquet --thoughts results/generate/musicot/thoughts.parquet \
        [--frame-sims FRAME_SIMS.parquet] [--prompts P1 P2] [--song-s 40] [--window-s 10] \
        --out results/figures/generated_timeline.pdf results/figures/generated_timeline.png

One column per generated song, one row per anchor. Each panel holds the cosine similarity of
every thought frame to the anchor's text as a step over the frame's span (left axis) and the
separated stem's RMS at the fine volume hop (right axis, orange). The thought plans more of the
song than is rendered: frames past the audio's end are drawn dashed on a shaded band, and
their similarities exist only in --frame-sims (the analyzability windows cover the audio).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from musicot.clap.data import ANCHORS
from musicot.report.figures import save_figure

DEFAULT_PROMPTS = 2
PLANNED_COLOR = "0.88"
VOLUME_COLOR = "C1"


def pick_prompts(windows: pd.DataFrame, prompts: Sequence[str] = ()) -> list[str]:
    """`prompts` if the windows hold them all, else (empty) the first DEFAULT_PROMPTS prompt_ids in sorted order."""
    known = sorted(windows["prompt_id"].astype(str).unique())
    if not known:
        raise ValueError("the analyzability windows are empty: no generated song to draw")
    missing = [p for p in prompts if p not in known]
    if missing:
        shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise ValueError(f"prompts {missing} are not among the analysed generated songs ({shown})")
    return list(prompts) or known[:DEFAULT_PROMPTS]


def frame_similarity(
    windows: pd.DataFrame,
    frame_sims: pd.DataFrame | None,
    prompt_id: str,
    anchor: str,
    n_frames: int,
    window_s: float,
    audio_end: float,
) -> pd.DataFrame:
    """frame, start, end (the full window span), sim, rendered for frames 0 .. n_frames - 1 of one song.

    Similarities come from the windows (the frames the audio covers) and, for the rest, from
    `frame_sims`; a frame neither has stays NaN (a gap in the line). A frame is rendered when it
    starts before the audio's end.
    """
    sims = pd.Series(np.nan, index=pd.RangeIndex(n_frames, name="frame"))
    for table in (frame_sims, windows):  # windows last: the metric's own numbers win where both exist
        if table is None or f"sim_{anchor}" not in table:
            continue
        rows = table[(table["prompt_id"].astype(str) == prompt_id) & (table["frame"] < n_frames)]
        known = rows.set_index("frame")[f"sim_{anchor}"].dropna()
        sims.loc[known.index] = known.to_numpy(dtype=float)
    start = np.arange(n_frames) * window_s
    return pd.DataFrame(
        {"frame": np.arange(n_frames), "start": start, "end": start + window_s, "sim": sims.to_numpy()}
    ).assign(rendered=lambda t: t["start"] < audio_end)


def step_xy(start: np.ndarray, end: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x, y of a step line holding each value over [start, end); NaN values leave gaps."""
    x = np.column_stack([start, end]).ravel().astype(float)
    y = np.repeat(np.asarray(values, dtype=float), 2)
    return x, y


def stem_volume(volume: pd.DataFrame, prompt_id: str, stem: str) -> tuple[np.ndarray, np.ndarray]:
    """(hop centre seconds, rms) of one song's separated stem, in time order (empty if absent)."""
    rows = volume[(volume["prompt_id"].astype(str) == prompt_id) & (volume["stem"].astype(str) == stem)]
    rows = rows.sort_values("start")
    return ((rows["start"] + rows["end"]) / 2).to_numpy(dtype=float), rows["rms"].to_numpy(dtype=float)


def audio_end(windows: pd.DataFrame, volume: pd.DataFrame, prompt_id: str) -> float:
    """Seconds of rendered audio: the last analysed window's or volume hop's end."""
    ends = [t.loc[t["prompt_id"].astype(str) == prompt_id, "end"].max() for t in (windows, volume)]
    ends = [float(e) for e in ends if pd.notna(e)]
    if not ends:
        raise ValueError(f"no analysed window or volume of prompt {prompt_id!r}")
    return max(ends)


def planned_frames(thoughts: pd.DataFrame, prompt_id: str, windows: pd.DataFrame) -> int:
    """M: frames of the song's thought (at least those the windows hold)."""
    in_thought = thoughts.loc[thoughts["prompt_id"].astype(str) == prompt_id, "frame"]
    in_windows = windows.loc[windows["prompt_id"].astype(str) == prompt_id, "frame"]
    return int(max(in_thought.max() if len(in_thought) else -1, in_windows.max() if len(in_windows) else -1)) + 1


def excluded(windows: pd.DataFrame, prompt_id: str, anchor: str) -> bool:
    """True when the analysis left this (song, stem) out (its window volumes are all NaN)."""
    col = f"volume_{anchor}"
    rows = windows.loc[windows["prompt_id"].astype(str) == prompt_id]
    return col in rows and bool(rows[col].isna().all())


def legend_handles(with_song_end: bool) -> list:
    """The figure's one legend: what each line, band and mark stands for."""
    handles = [
        Line2D([], [], color="C0", label="thought: cos(frame, anchor text)"),
        Line2D([], [], color="C0", linestyle="--", label="thought frame beyond the audio"),
        Line2D([], [], color=VOLUME_COLOR, label="separated stem RMS (right axis)"),
        Patch(color=PLANNED_COLOR, label="planned, not rendered"),
        Line2D([], [], color="black", linewidth=0.8, label="end of the audio"),
    ]
    if with_song_end:
        handles.append(Line2D([], [], color="black", linestyle=":", linewidth=0.8, label="planned song end"))
    return handles


def plot_songs(
    windows: pd.DataFrame,
    volume: pd.DataFrame,
    thoughts: pd.DataFrame,
    prompts: Sequence[str],
    paths: Sequence[Path],
    frame_sims: pd.DataFrame | None = None,
    anchors: Sequence[str] = ANCHORS,
    window_s: float = 10.0,
    song_s: float | None = None,
) -> Figure:
    """Draw one column per prompt, one row per anchor (see the module docstring) into every path."""
    fig = Figure(figsize=(4.8 * len(prompts), 1.35 * len(anchors) + 1.0))
    FigureCanvasAgg(fig)
    # a last, thin row holds the shared legend, so tight_layout keeps it clear of the panels
    grid = fig.add_gridspec(len(anchors) + 1, len(prompts), height_ratios=[1.0] * len(anchors) + [0.25])
    axes = np.empty((len(anchors), len(prompts)), dtype=object)
    for col in range(len(prompts)):
        for row in range(len(anchors)):
            axes[row, col] = fig.add_subplot(grid[row, col], sharex=axes[0, col] if row else None)
    for col, prompt in enumerate(prompts):
        end = audio_end(windows, volume, prompt)
        n_frames = max(planned_frames(thoughts, prompt, windows), math.ceil(end / window_s))
        plan_end = n_frames * window_s
        for row, anchor in enumerate(anchors):
            ax = axes[row, col]
            frames = frame_similarity(windows, frame_sims, prompt, anchor, n_frames, window_s, end)
            # the volume's twin axis goes underneath, so the thought's step line stays readable on top
            twin = ax.twinx()
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
            if plan_end > end:
                twin.axvspan(end, plan_end, color=PLANNED_COLOR, zorder=0)
            twin.axvline(end, color="black", linewidth=0.8)
            if song_s is not None:
                twin.axvline(song_s, color="black", linestyle=":", linewidth=0.8)
            t, rms = stem_volume(volume, prompt, anchor)
            twin.plot(t, rms, color=VOLUME_COLOR, linewidth=0.7)
            twin.fill_between(t, rms, color=VOLUME_COLOR, alpha=0.2, linewidth=0)
            twin.set_ylim(bottom=0)
            twin.tick_params(labelsize=6)
            for rendered, style in ((True, "-"), (False, "--")):
                part = frames[frames["rendered"] == rendered]
                if len(part):
                    ax.plot(*step_xy(part["start"], part["end"], part["sim"]), style, color="C0", linewidth=1.4)
            ax.set_xlim(0, max(plan_end, song_s or 0.0))
            ax.tick_params(labelsize=6, labelbottom=row == len(anchors) - 1)
            note = " (left out of r: quiet)" if excluded(windows, prompt, anchor) else ""
            ax.set_ylabel(anchor + note, fontsize=7)
        axes[0, col].set_title(prompt, fontsize=9)
        axes[-1, col].set_xlabel("time (s)", fontsize=8)
    legend = fig.add_subplot(grid[-1, :])
    legend.axis("off")
    legend.legend(handles=legend_handles(song_s is not None), loc="center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle("generated songs: the drawn thought against the separated stems", fontsize=10)
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=Path, required=True, help="results/metrics/analyzability_windows.parquet")
    parser.add_argument("--volume", type=Path, required=True, help="results/metrics/generated_volume.parquet")
    parser.add_argument("--thoughts", type=Path, required=True, help="results/generate/musicot/thoughts.parquet")
    parser.add_argument("--frame-sims", type=Path, help="prompt_id, frame, sim_<anchor> for every thought frame")
    parser.add_argument("--prompts", nargs="*", default=[], help="prompt_ids to draw (default: the first two)")
    parser.add_argument("--song-s", type=float, help="the planned song length (generate.song_s), marked")
    parser.add_argument("--window-s", type=float, default=10.0, help="seconds per thought frame (clap.window_s)")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    windows = pd.read_parquet(args.windows)
    frame_sims = pd.read_parquet(args.frame_sims) if args.frame_sims else None
    plot_songs(
        windows,
        pd.read_parquet(args.volume),
        pd.read_parquet(args.thoughts),
        pick_prompts(windows, args.prompts),
        args.out,
        frame_sims=frame_sims,
        window_s=args.window_s,
        song_s=args.song_s,
    )


if __name__ == "__main__":
    main()
