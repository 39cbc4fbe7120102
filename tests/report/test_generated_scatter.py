"""Anchor similarity vs separated stem volume per anchor: which points and which annotation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from musicot.clap.data import ANCHORS
from musicot.report.generated_scatter import anchor_stats, kept_points, main, panel_title, plot_scatter, pooled_stats


def _windows() -> pd.DataFrame:
    rows = []
    for p, prompt in enumerate(("a", "b")):
        for frame in range(3):
            row = {"prompt_id": prompt, "frame": frame, "start": 10.0 * frame, "end": 10.0 * frame + 10}
            row.update({f"sim_{s}": 0.1 * frame + 0.5 * p for s in ANCHORS})
            row.update({f"volume_{s}": 0.2 * frame + p for s in ANCHORS})
            rows.append(row)
    table = pd.DataFrame(rows)
    table.loc[table["prompt_id"] == "b", "volume_drums"] = np.nan  # b's drums left out
    return table


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "anchor": a,
                "stems": "separated",
                "r_pooled": 0.5,
                "r_per_song_mean": 0.4,
                "n_windows": 6,
                "n_songs": 2,
                "n_excluded": 0,
                "few_songs": True,
            }
            for a in ANCHORS
        ]
    )


def test_only_kept_windows_become_points():
    points = kept_points(_windows(), "drums")
    assert points.to_dict("list") == {
        "prompt_id": ["a", "a", "a"],
        "frame": [0, 1, 2],
        "volume": pytest.approx([0.0, 0.2, 0.4]),
        "sim": pytest.approx([0.0, 0.1, 0.2]),
    }
    assert len(kept_points(_windows(), "bass")) == 6


def test_pooled_stats_without_a_table():
    stats = pooled_stats(kept_points(_windows(), "bass"))
    # sim = volume / 2 in every window of both songs: a perfect line
    assert stats == {"r_pooled": pytest.approx(1.0), "n_songs": 2, "n_windows": 6}
    assert math.isnan(pooled_stats(kept_points(_windows(), "drums").iloc[:2])["r_pooled"])


def test_titles_name_r_counts_and_few_songs():
    stats = anchor_stats(_table(), "piano", kept_points(_windows(), "piano"))
    assert panel_title("piano", stats) == "piano: r = 0.50\n(2 songs, 6 windows)\n(fewer than 10 songs)"
    computed = anchor_stats(None, "drums", kept_points(_windows(), "drums"))
    assert panel_title("drums", computed) == "drums: r = 1.00\n(1 songs, 3 windows)"
    assert panel_title("bass", {"r_pooled": None, "n_songs": 0, "n_windows": 0, "few_songs": "False"}) == (
        "bass: r = n/a\n(0 songs, 0 windows)"
    )


def test_figure_has_a_panel_per_anchor_and_is_written(tmp_path):
    fig = plot_scatter(_windows(), [tmp_path / "s.pdf", tmp_path / "s.png"], _table(), min_songs=5)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == list(ANCHORS)
    assert fig.axes[0].get_title().endswith("(fewer than 5 songs)")
    assert [len(ax.collections[0].get_offsets()) for ax in fig.axes] == [6, 6, 3, 6, 6]
    assert (tmp_path / "s.pdf").stat().st_size > 0 and (tmp_path / "s.png").stat().st_size > 0


def test_cli_reads_the_csv(tmp_path):
    _windows().to_parquet(tmp_path / "w.parquet")
    _table().to_csv(tmp_path / "a.csv", index=False)
    out = tmp_path / "f.png"
    main(["--windows", str(tmp_path / "w.parquet"), "--table", str(tmp_path / "a.csv"), "--out", str(out)])
    assert out.stat().st_size > 0
