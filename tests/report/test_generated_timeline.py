"""Generated songs' thought-vs-volume timeline: which frames, similarities and volumes it draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.clap.data import ANCHORS
from musicot.report.generated_timeline import (
    audio_end,
    excluded,
    frame_similarity,
    main,
    pick_prompts,
    planned_frames,
    plot_songs,
    stem_volume,
    step_xy,
)

AUDIO_S = 25.0  # 3 frames rendered (the last one cut), of a 4-frame thought


def _windows() -> pd.DataFrame:
    rows = []
    for p, prompt in enumerate(("p2", "p1", "p3")):
        for frame in range(3):
            row = {"prompt_id": prompt, "frame": frame, "start": 10.0 * frame, "end": min(10.0 * frame + 10, AUDIO_S)}
            row.update({"code_1": frame, "code_2": 0})
            row.update({f"sim_{a}": 0.1 * frame + 0.01 * i + p for i, a in enumerate(ANCHORS)})
            row.update({f"volume_{a}": 0.2 + 0.1 * frame for a in ANCHORS})
            rows.append(row)
    table = pd.DataFrame(rows)
    table.loc[table["prompt_id"] == "p1", "volume_bass"] = np.nan  # p1's bass left out as too quiet
    return table


def _volume() -> pd.DataFrame:
    hop = 5.0
    starts = np.arange(0, AUDIO_S, hop)
    rows = [
        {"prompt_id": p, "stem": s, "start": t, "end": t + hop, "rms": 0.01 * k}
        for p in ("p1", "p2", "p3")
        for s in (*ANCHORS, "other")
        for k, t in enumerate(starts[::-1])  # written out of time order on purpose
    ]
    return pd.DataFrame(rows)


def _thoughts() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"prompt_id": p, "frame": f, "level": lv, "code": 1}
            for p in ("p1", "p2", "p3")
            for f in range(4)
            for lv in range(2)
        ]
    )


def _frame_sims() -> pd.DataFrame:
    rows = [{"prompt_id": "p1", "frame": f, **{f"sim_{a}": -1.0 - f for a in ANCHORS}} for f in range(4)]
    return pd.DataFrame(rows)


def test_default_prompts_are_the_first_two_sorted():
    assert pick_prompts(_windows()) == ["p1", "p2"]
    assert pick_prompts(_windows(), ["p3"]) == ["p3"]
    with pytest.raises(ValueError, match=r"\['nope'\] are not among"):
        pick_prompts(_windows(), ["nope"])


def test_rendered_frames_take_the_windows_and_planned_ones_the_frame_sims():
    windows = _windows()
    end = audio_end(windows, _volume(), "p1")
    n_frames = planned_frames(_thoughts(), "p1", windows)
    assert (end, n_frames) == (AUDIO_S, 4)
    frames = frame_similarity(windows, _frame_sims(), "p1", "drums", n_frames, 10.0, end)
    assert frames["start"].tolist() == [0.0, 10.0, 20.0, 30.0]
    assert frames["end"].tolist() == [10.0, 20.0, 30.0, 40.0]  # full spans, also for the cut last window
    # p1 is prompt index 1, drums anchor index 2: 0.1 * frame + 0.02 + 1; frame 3 only in frame_sims
    assert frames["sim"].tolist() == pytest.approx([1.02, 1.12, 1.22, -4.0])
    assert frames["rendered"].tolist() == [True, True, True, False]


def test_without_frame_sims_the_planned_frame_is_a_gap():
    frames = frame_similarity(_windows(), None, "p1", "drums", 4, 10.0, AUDIO_S)
    assert np.isnan(frames["sim"].iloc[3]) and not frames["sim"].iloc[:3].isna().any()


def test_step_line_holds_each_value_over_its_span():
    x, y = step_xy(np.array([0.0, 10.0]), np.array([10.0, 20.0]), np.array([0.5, np.nan]))
    assert x.tolist() == [0.0, 10.0, 10.0, 20.0]
    assert y[:2].tolist() == [0.5, 0.5] and np.isnan(y[2:]).all()


def test_stem_volume_is_one_song_and_stem_in_time_order():
    t, rms = stem_volume(_volume(), "p2", "piano")
    assert t.tolist() == [2.5, 7.5, 12.5, 17.5, 22.5]
    assert rms.tolist() == pytest.approx([0.04, 0.03, 0.02, 0.01, 0.0])
    assert stem_volume(_volume(), "p2", "kazoo")[0].size == 0


def test_excluded_stems_are_the_all_nan_volumes():
    assert excluded(_windows(), "p1", "bass")
    assert not excluded(_windows(), "p2", "bass")


def test_figure_has_a_column_per_song_and_a_row_per_anchor(tmp_path):
    fig = plot_songs(
        _windows(),
        _volume(),
        _thoughts(),
        ["p1", "p2"],
        [tmp_path / "t.pdf", tmp_path / "t.png"],
        frame_sims=_frame_sims(),
        song_s=35.0,
    )
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["p1", "p2"]
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert "bass (left out of r: quiet)" in labels and labels.count("drums") == 2
    assert (tmp_path / "t.pdf").stat().st_size > 0 and (tmp_path / "t.png").stat().st_size > 0


def test_cli(tmp_path):
    paths = {}
    for name, table in (("w", _windows()), ("v", _volume()), ("t", _thoughts()), ("s", _frame_sims())):
        paths[name] = tmp_path / f"{name}.parquet"
        table.to_parquet(paths[name])
    out = tmp_path / "f.png"
    inputs = ["--windows", str(paths["w"]), "--volume", str(paths["v"]), "--thoughts", str(paths["t"])]
    main([*inputs, "--frame-sims", str(paths["s"]), "--prompts", "p3", "--song-s", "40", "--out", str(out)])
    assert out.stat().st_size > 0
