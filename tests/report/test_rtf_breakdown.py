"""RTF breakdown per system: reading generation.json and the stacked bars."""

from __future__ import annotations

import json

import pytest

from musicot.report.rtf_breakdown import PAPER_LABEL, bar_segments, hardware_text, main, plot_breakdown, read_generation

HARDWARE = {"cpu": "Test CPU", "cores": 2, "torch_threads": 2, "device": "cpu"}


def _write(tmp_path, system: str, rtf: dict, hardware=HARDWARE):
    path = tmp_path / system / "generation.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"system": system, "lm": "musicot", "rtf": rtf, "hardware": hardware}))
    return path


def test_read_generation_and_hardware_line(tmp_path):
    path = _write(tmp_path, "musicot", {"total": 3.0, "lm": 2.0, "dit": 0.5, "decoder": 0.25})
    row = read_generation(path)
    assert row == {
        "system": "musicot",
        "total": 3.0,
        "lm": 2.0,
        "dit": 0.5,
        "decoder": 0.25,
        "hardware": "cpu: Test CPU, cores: 2, torch threads: 2, device: cpu",
    }
    assert hardware_text("an H200") == "an H200"


def test_an_incomplete_rtf_names_the_file(tmp_path):
    path = _write(tmp_path, "base", {"total": 3.0, "lm": 2.0})
    with pytest.raises(ValueError, match=r"base/generation\.json lacks rtf\.dit, rtf\.decoder"):
        read_generation(path)


def test_segments_put_the_unexplained_rest_in_other():
    rows = [
        {"system": "a", "total": 3.0, "lm": 2.0, "dit": 0.5, "decoder": 0.25, "hardware": "h"},
        {"system": "b", "total": 1.0, "lm": 0.6, "dit": 0.3, "decoder": 0.2, "hardware": "h"},  # parts overshoot
    ]
    table = bar_segments(rows)
    assert table["other"].tolist() == pytest.approx([0.25, 0.0])
    assert table["system"].tolist() == ["a", "b"]


def test_figure_bars_totals_and_marks(tmp_path):
    rows = [
        {"system": "base", "total": 2.0, "lm": 1.0, "dit": 0.5, "decoder": 0.5, "hardware": "h1"},
        {"system": "musicot", "total": 4.0, "lm": 3.0, "dit": 0.5, "decoder": 0.25, "hardware": "h1"},
    ]
    fig = plot_breakdown(rows, [tmp_path / "r.pdf", tmp_path / "r.png"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["2.00", "4.00"]
    labels = ax.get_legend_handles_labels()[1]
    assert [x for x in labels if x in ("LM", "DiT", "decoder", "other")] == ["LM", "DiT", "decoder", "other"]
    assert PAPER_LABEL in labels and "real time (RTF = 1)" in labels
    assert "h1" in ax.get_title()
    assert (tmp_path / "r.pdf").stat().st_size > 0 and (tmp_path / "r.png").stat().st_size > 0


def test_cli(tmp_path):
    a = _write(tmp_path, "base", {"total": 1.0, "lm": 0.5, "dit": 0.25, "decoder": 0.25})
    b = _write(tmp_path, "musicot", {"total": 2.0, "lm": 1.5, "dit": 0.25, "decoder": 0.25})
    out = tmp_path / "f.png"
    main(["--generation", str(a), str(b), "--out", str(out)])
    assert out.stat().st_size > 0
