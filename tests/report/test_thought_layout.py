"""The coarse-to-fine thought layout figure: grid, sequence order and the drawn file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.report.thought_layout import MARKERS, main, pick_prompt, plot_layout, sequence_layout, thought_grid

CODES = np.array([[3, 1], [0, 2], [7, 5]])  # 3 frames x 2 levels


def _thoughts() -> pd.DataFrame:
    rows = [
        {"prompt_id": p, "frame": f, "level": lv, "code": int(CODES[f, lv]) + k}
        for k, p in enumerate(("b", "a"))
        for f in range(3)
        for lv in range(2)
    ]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # row order must not matter


def test_grid_is_frames_by_levels():
    thoughts = _thoughts()
    assert pick_prompt(thoughts) == "a"
    assert thought_grid(thoughts, "b").tolist() == CODES.tolist()
    assert thought_grid(thoughts, "a").tolist() == (CODES + 1).tolist()


def test_a_missing_cell_is_refused():
    thoughts = _thoughts()
    thoughts = thoughts[~((thoughts["prompt_id"] == "b") & (thoughts["frame"] == 1) & (thoughts["level"] == 0))]
    with pytest.raises(ValueError, match="not a full M x L grid"):
        thought_grid(thoughts, "b")
    with pytest.raises(ValueError, match="not a full M x L grid"):
        thought_grid(_thoughts().assign(level=lambda t: t["level"] * 2), "a")  # levels 0 and 2: level 1 missing
    assert thought_grid(_thoughts().assign(level=lambda t: t["level"] + 1), "a").shape == (3, 2)  # 1-based levels
    with pytest.raises(ValueError, match="'c' has no thought"):
        pick_prompt(thoughts, "c")


def test_sequence_is_level_1_of_every_frame_then_level_2():
    layout = sequence_layout(CODES)
    assert layout["frame"].tolist() == [0, 1, 2, 0, 1, 2]
    assert layout["level"].tolist() == [0, 0, 0, 1, 1, 1]
    assert layout["code"].tolist() == [3, 0, 7, 1, 2, 5]
    assert layout["token"].tolist() == [3, 0, 7, 1, 2, 5]


def test_vocabulary_ids_offset_each_level_by_the_codebook_size():
    assert sequence_layout(CODES, codebook_size=8)["token"].tolist() == [3, 0, 7, 9, 10, 13]


def test_figure_is_written_with_codes_and_markers(tmp_path):
    fig = plot_layout(CODES, [tmp_path / "l.pdf", tmp_path / "l.png"], codebook_size=8)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert all(m in texts for m in MARKERS)
    assert "13" in texts and "#5" in texts  # level 2 code 5 as vocabulary id; the last cell's position
    assert (tmp_path / "l.pdf").stat().st_size > 0 and (tmp_path / "l.png").stat().st_size > 0


def test_cli(tmp_path):
    _thoughts().to_parquet(tmp_path / "t.parquet")
    out = tmp_path / "f.png"
    main(["--thoughts", str(tmp_path / "t.parquet"), "--prompt", "b", "--out", str(out)])
    assert out.stat().st_size > 0
