"""The separator's SDR-against-training-time figure."""

from __future__ import annotations

import pytest

from musicot.data.table import STEMS
from musicot.report.separator_curve import main, plot_curve, training_seconds


def _metrics() -> dict:
    evals = [
        (step, {"loss": 1.0 / (1 + step), "eval_s": 2.0, **{f"sdr_{s}": step / 10 for s in STEMS}})
        for step in (0, 50, 100)
    ]
    return {"steps": 100, "params": 364344, "history": {"train": [(10, 1.0)], "eval": evals, "wall_s": 56.0}}


def test_training_seconds_take_the_evaluations_out():
    points = training_seconds(_metrics())
    # (56 s wall - 3 evaluations x 2 s) / 100 steps = 0.5 s per step
    assert [s for s, _ in points] == pytest.approx([0.0, 25.0, 50.0])
    assert points[-1][1]["sdr_guitar"] == 10.0


def test_figure_has_one_line_per_stem_and_is_written(tmp_path):
    fig = plot_curve(_metrics(), [tmp_path / "c.pdf", tmp_path / "c.png"])
    assert [line.get_label() for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")] == list(STEMS)
    assert (tmp_path / "c.pdf").stat().st_size > 0 and (tmp_path / "c.png").stat().st_size > 0


def test_no_evaluations_is_a_clear_error(tmp_path):
    metrics = _metrics()
    metrics["history"]["eval"] = []
    with pytest.raises(ValueError, match="no evaluations"):
        plot_curve(metrics, [tmp_path / "c.png"])


def test_cli(tmp_path):
    import json

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(_metrics()))
    main(["--metrics", str(path), "--out", str(tmp_path / "f.pdf")])
    assert (tmp_path / "f.pdf").exists()
