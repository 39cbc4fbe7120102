"""The training curve of one model from its metrics.json history, as pdf and png.

    python -m musicot.report.loss_curve --metrics results/lm/musicot/model/metrics.json \
        --title "LM musicot" --out results/figures/lm_loss_musicot.pdf results/figures/lm_loss_musicot.png

Draws the logged training loss (mean over each log interval) and every evaluation metric whose
name ends in `loss` (e.g. the valid thought and audio losses), against the optimizer step.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.report.figures import save_figure


def plot_history(
    history: dict, paths: Sequence[Path], title: str = "", ylabel: str = "cross-entropy (nats per token)"
) -> Figure:
    """Draw `history` (train_loop's: {"train": [(step, loss)], "eval": [(step, {name: value})]}) into `paths`."""
    if not history.get("train"):
        raise ValueError("the history holds no training loss to draw")
    fig = Figure(figsize=(6.0, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    steps, losses = zip(*history["train"], strict=True)
    ax.plot(steps, losses, label="train", color="black", linewidth=1.2)
    names = sorted({k for _, metrics in history.get("eval", []) for k in metrics if k.endswith("loss")})
    for name in names:
        points = [(s, m[name]) for s, m in history["eval"] if name in m]
        ax.plot(*zip(*points, strict=True), marker="o", markersize=3, linewidth=1, label=name.replace("_", " "))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, paths)
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metrics", type=Path, required=True, help="a trainer's metrics.json with a history")
    parser.add_argument("--title", default="")
    parser.add_argument("--ylabel", default="cross-entropy (nats per token)")
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure paths (.pdf, .png)")
    args = parser.parse_args(argv)
    plot_history(json.loads(args.metrics.read_text())["history"], args.out, args.title, args.ylabel)


if __name__ == "__main__":
    main()
