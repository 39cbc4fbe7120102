"""Where generation time goes: LM, DiT and decoder seconds per audio second for each system, as pdf and png.

    python -m musicot.report.rtf_breakdown \
        --generation results/generate/base/generation.json results/generate/musicot/generation.json \
        --out results/figures/rtf_breakdown.pdf results/figures/rtf_breakdown.png

One stacked horizontal bar per system from its generation.json `rtf` (wall seconds per second
of audio); whatever `total` holds beyond the three parts (I/O, resampling) is drawn as
"other", and the total is printed at the bar's end. The dashed line is real time (RTF = 1);
the dotted one the paper's RTF, measured on other hardware with other model sizes, so it
places our bars rather than judges them.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.generate.hardware import hardware_text
from musicot.report.figures import save_figure

PARTS = (("lm", "LM"), ("dit", "DiT"), ("decoder", "decoder"), ("other", "other"))
PAPER_RTF = 0.27
PAPER_LABEL = "paper: RTF 0.27 (RTX 4090, 1B+1B)"


def read_generation(path: Path) -> dict:
    """system, lm, dit, decoder, total, hardware of one generation.json; a clear error when rtf is incomplete."""
    data = json.loads(Path(path).read_text())
    rtf = data.get("rtf") or {}
    missing = [f"rtf.{k}" for k in ("total", "lm", "dit", "decoder") if rtf.get(k) is None]
    missing += [] if "system" in data else ["system"]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: was it written by musicot.generate.run?")
    parts = {k: float(rtf[k]) for k in ("total", "lm", "dit", "decoder")}
    return {"system": str(data["system"]), **parts, "hardware": hardware_text(data.get("hardware"))}


def bar_segments(rows: Sequence[dict]) -> pd.DataFrame:
    """One row per system: lm, dit, decoder, other (total beyond the parts, never negative), total."""
    table = pd.DataFrame(rows, columns=["system", "lm", "dit", "decoder", "total", "hardware"])
    table["other"] = (table["total"] - table[["lm", "dit", "decoder"]].sum(axis=1)).clip(lower=0.0)
    return table[["system", "lm", "dit", "decoder", "other", "total", "hardware"]]


def plot_breakdown(rows: Sequence[dict], paths: Sequence[Path]) -> Figure:
    """Stacked bars per system with real time and the paper's RTF marked, into every path."""
    if not rows:
        raise ValueError("no generation.json to draw")
    table = bar_segments(rows)
    fig = Figure(figsize=(9.0, 1.8 + 0.45 * len(table)))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = list(range(len(table)))
    left = pd.Series(0.0, index=table.index)
    for (key, label), colour in zip(PARTS, ("C0", "C1", "C2", "0.7"), strict=True):
        if key == "other" and not (table["other"] > 0).any():
            continue
        ax.barh(y, table[key], left=left, color=colour, label=label, height=0.6)
        left = left + table[key]
    right = float(max(left.max(), table["total"].max(), 1.0, PAPER_RTF))
    for i, row in table.iterrows():
        ax.text(max(left[i], row["total"]) + 0.01 * right, i, f"{row['total']:.2f}", va="center", fontsize=8)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="real time (RTF = 1)")
    ax.axvline(PAPER_RTF, color="C3", linestyle=":", linewidth=1.2, label=PAPER_LABEL)
    ax.set_yticks(y, labels=list(table["system"]))
    ax.invert_yaxis()
    ax.set_xlim(0, right * 1.12)
    ax.set_xlabel("seconds of compute per second of audio (RTF)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    hardware = "; ".join(dict.fromkeys(table["hardware"]))
    ax.set_title(textwrap.fill(f"generation time on {hardware}", 110), fontsize=8)
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generation", type=Path, nargs="+", required=True, help="each system's generation.json")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    plot_breakdown([read_generation(p) for p in args.generation], args.out)


if __name__ == "__main__":
    main()
