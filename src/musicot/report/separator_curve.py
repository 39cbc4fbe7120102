"""The trained separator's validation SDR per stem against training time, as pdf and png.

    python -m musicot.report.separator_curve --metrics results/prep/separator/metrics.json \
        --out results/figures/separator_curve.pdf results/figures/separator_curve.png

Reads the evaluation history `separate_train` writes (each stem's SDR over the fixed validation
crops, every `eval_every` steps). The x axis is training seconds: optimizer steps times the
run's mean step time, with the evaluations' own time taken out, so curves from runs that
evaluate at different rates compare.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.data.table import STEMS
from musicot.report.figures import save_figure


def training_seconds(metrics: dict) -> list[tuple[float, dict]]:
    """(training seconds, eval metrics) per evaluation of a separator's metrics.json."""
    history = metrics["history"]
    evals = history.get("eval", [])
    steps = metrics["steps"]
    if not evals or not steps:
        raise ValueError("the separator's metrics hold no evaluations to draw (was eval_every > steps?)")
    eval_s = sum(m.get("eval_s", 0.0) for _, m in evals)
    per_step = max(history["wall_s"] - eval_s, 0.0) / steps
    return [(step * per_step, m) for step, m in evals]


def plot_curve(metrics: dict, paths: Sequence[Path], title: str = "") -> Figure:
    """Draw every stem's validation SDR against training seconds into `paths`."""
    points = training_seconds(metrics)
    fig = Figure(figsize=(6.0, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for stem in STEMS:
        curve = [(s, m[f"sdr_{stem}"]) for s, m in points if f"sdr_{stem}" in m]
        if curve:
            ax.plot(*zip(*curve, strict=True), marker="o", markersize=3, linewidth=1.2, label=stem)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("training seconds")
    ax.set_ylabel("validation SDR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(
        title or f"separator: {metrics.get('params', 0) / 1e6:.2f}M parameters, {metrics['steps']} steps", fontsize=10
    )
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, required=True, help="the trained separator's metrics.json")
    parser.add_argument("--title", default="", help="figure title (default: size and steps)")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    plot_curve(json.loads(args.metrics.read_text()), args.out, args.title)


if __name__ == "__main__":
    main()
