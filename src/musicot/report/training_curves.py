"""Every trained model's loss in one figure, a panel per model, as pdf and png.

    python -m musicot.report.training_curves \
        --model separator=results/prep/separator/metrics.json clap=results/clap/model/metrics.json \
                rvq=results/rvq/metrics.json semantic=results/semantic/encoder/metrics.json \
                lm_musicot=results/lm/musicot/model/metrics.json lm_base=results/lm/base/model/metrics.json \
                vae=results/acoustic/vae/metrics.json dit=results/acoustic/dit/metrics.json \
        --out results/figures/training_curves.pdf results/figures/training_curves.png

The trainers write their metrics.json in different shapes, but every history in them is the
shared loop's ({"train": [[step, loss]], "eval": [[step, {name: value}]], ...}): at the top
(`history`: separator, RVQ, LM, VAE, DiT), one per training stage (CLAP: `history.tags`,
`history.contrastive`) or one per sub-model (semantic: `ssl.history`, `ctc.history`).
`training_series` finds them all. The validation lines are the evaluation metrics named
`loss` or `*_loss`; the RVQ logs none (its training loss is the commitment loss), so its
full-depth reconstruction MSE on the held-out rows stands in. A model of several stages is
drawn stage after stage along one step axis, as it was trained.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from musicot.report.figures import save_figure

DECADE = 10.0  # a panel whose loss spans more than this ratio is drawn on log y


@dataclass(frozen=True)
class Series:
    """One line of a panel: `kind` is "train" or "valid"; `stage` names the history it came from ("" if one)."""

    label: str
    kind: str
    stage: str
    steps: tuple[int, ...]
    values: tuple[float, ...]


def find_histories(metrics: dict, stage: str = "") -> Iterator[tuple[str, dict]]:
    """(stage name, loop history) for every train_loop history nested in `metrics`, in file order."""
    if isinstance(metrics.get("train"), list) and isinstance(metrics.get("eval"), list):
        yield stage, metrics
        return
    for key, value in metrics.items():
        if isinstance(value, dict):
            # "history" is the container, not a stage: CLAP's history.tags is stage "tags"
            yield from find_histories(value, stage if key == "history" else "/".join(filter(None, (stage, key))))


def _finite(points) -> list[tuple[int, float]]:
    """(step, value) pairs whose value is a finite number (CLAP writes NaN as null)."""
    return [(int(s), float(v)) for s, v in points if isinstance(v, int | float) and math.isfinite(v)]


def _valid_names(history: dict) -> list[str]:
    """Evaluation metrics to draw as validation losses (see the module docstring)."""
    names = {k for _, m in history["eval"] for k in m}
    losses = sorted(k for k in names if k == "loss" or k.endswith("_loss"))
    if losses:
        return losses
    deepest = sorted((int(m.group(1)), k) for k in names if (m := re.fullmatch(r"mse_l(\d+)", k)))
    return [deepest[-1][1]] if deepest else []


def _valid_label(name: str) -> str:
    """valid_audio_loss -> 'valid audio loss'; the RVQ's mse_l4 -> 'valid reconstruction MSE (4 levels)'."""
    if m := re.fullmatch(r"mse_l(\d+)", name):
        return f"valid reconstruction MSE ({m.group(1)} levels)"
    return (name if name.startswith("valid") else f"valid {name}").replace("_", " ")


def training_series(metrics: dict, source: str | Path = "metrics.json") -> list[Series]:
    """The train and validation series of a metrics.json, later stages' steps shifted past earlier ones.

    Raises ValueError naming `source` when the file holds no training loss at all.
    """
    histories = list(find_histories(metrics))
    series: list[Series] = []
    offset = 0
    for stage, history in histories:
        suffix = f" ({stage})" if stage and len(histories) > 1 else ""
        train = _finite(history["train"])
        if train:
            series.append(Series(f"train{suffix}", "train", stage, *_shifted(train, offset)))
        for name in _valid_names(history):
            points = _finite((s, m.get(name)) for s, m in history["eval"])
            label = _valid_label(name)
            if points:
                series.append(Series(label + suffix, "valid", stage, *_shifted(points, offset)))
        last = [s for s, _ in history["train"]] + [s for s, _ in history["eval"]]
        offset += max(last, default=0)
    if not any(s.kind == "train" for s in series):
        note = (
            f" (copied from the pretrained model {metrics['pretrained']}, not trained here)"
            if "pretrained" in metrics
            else ""
        )
        raise ValueError(
            f"{source}: no training history with a logged loss{note}; found "
            f"{len(histories)} history block(s). Was the model trained by this run's trainer?"
        )
    return series


def _shifted(points: list[tuple[int, float]], offset: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    steps, values = zip(*points, strict=True)
    return tuple(s + offset for s in steps), values


def stage_starts(series: Sequence[Series]) -> list[int]:
    """First step of every stage after the first: where the panel marks a stage change."""
    firsts: dict[str, int] = {}
    for s in series:
        firsts[s.stage] = min(firsts.get(s.stage, s.steps[0]), s.steps[0])
    return sorted(firsts.values())[1:]


def wants_log_y(series: Sequence[Series]) -> bool:
    """True when every value is positive and the largest is more than a decade above the smallest."""
    values = [v for s in series for v in s.values]
    return bool(values) and min(values) > 0 and max(values) / min(values) > DECADE


def plot_curves(models: Sequence[tuple[str, list[Series]]], paths: Sequence[Path]) -> Figure:
    """One panel per (model name, series), train lines solid, validation lines with markers."""
    if not models:
        raise ValueError("no model to draw")
    ncols = min(4, len(models))
    nrows = math.ceil(len(models) / ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.8 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (name, series) in zip(axes, models, strict=False):
        for s in series:
            style = {"linewidth": 1.2} if s.kind == "train" else {"marker": "o", "markersize": 3, "linewidth": 1}
            ax.plot(s.steps, s.values, label=s.label, **style)
        for step in stage_starts(series):
            ax.axvline(step, color="grey", linestyle=":", linewidth=0.8)
        if wants_log_y(series):
            ax.set_yscale("log")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(which="both", labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    save_figure(fig, paths)
    return fig


def parse_model(text: str) -> tuple[str, Path]:
    """NAME=PATH -> (NAME, PATH)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH (e.g. rvq=results/rvq/metrics.json), got {text!r}")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=parse_model, nargs="+", required=True, help="NAME=PATH of each model's metrics.json"
    )
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="figure files (.pdf, .png)")
    args = parser.parse_args(argv)
    models = [(name, training_series(json.loads(path.read_text()), path)) for name, path in args.model]
    plot_curves(models, args.out)


if __name__ == "__main__":
    main()
