"""musicot.clap.tags: zero-shot tags from cached embeddings and the Eq. 5 selection, on hand-built vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.clap import tags as CT


def _unit(*v: float) -> np.ndarray:
    x = np.array(v, dtype=np.float32)
    return x / np.linalg.norm(x)


TAGS = {
    "genre": {"rock": _unit(1, 0, 0, 0), "jazz": _unit(0, 1, 0, 0)},
    "mood": {"happy": _unit(0, 0, 1, 0), "dark": _unit(0, 0, 0, 1)},
}


def test_song_embedding_is_renormalised_window_mean():
    windows = pd.DataFrame({"song_id": ["a", "a", "b"]})
    emb = np.stack([_unit(1, 0, 0, 0), _unit(0, 1, 0, 0), _unit(0, 0, 1, 0)])
    songs = CT.song_embeddings(windows, emb)
    np.testing.assert_allclose(songs["a"], _unit(1, 1, 0, 0), rtol=1e-6)
    np.testing.assert_allclose(songs["b"], emb[2])


def test_zero_shot_picks_the_nearest_tag_and_marks_gaps():
    songs = {"a": _unit(0.9, 0.1, 0.1, 0.8), "b": _unit(0.1, 0.9, 0.9, 0.1)}
    table = CT.zero_shot(songs, TAGS, known={"a": {"genre", "mood"}, "b": {"genre"}})
    top = table[table["rank"] == 0].set_index(["song_id", "family"])["tag"]
    assert top[("a", "genre")] == "rock" and top[("a", "mood")] == "dark"
    assert top[("b", "genre")] == "jazz" and top[("b", "mood")] == "happy"
    gaps = table[table["fills_gap"]]
    assert set(zip(gaps["song_id"], gaps["family"], strict=True)) == {("b", "mood")}  # b's metadata has no mood
    truth = pd.DataFrame(
        {"song_id": ["a", "a", "b"], "family": ["genre", "mood", "genre"], "tag": ["rock", "happy", "rock"]}
    )
    acc = {r["metric"]: r["value"] for r in CT.zero_shot_accuracy(table, truth, ["a", "b"])}
    assert acc == {"zero_shot_acc_genre": 0.5, "zero_shot_acc_mood": 0.0}


def test_eq5_selects_above_delta_and_scores_against_metadata():
    prompts = {"a": _unit(1, 0, 1, 0)}  # cos 0.707 with rock and happy, 0 with jazz and dark
    truth = pd.DataFrame({"song_id": ["a", "a"], "family": ["genre", "mood"], "tag": ["rock", "dark"]})
    scores = {r["metric"]: r["value"] for r in CT.eq5_scores(prompts, TAGS, truth, delta=0.5)}
    assert scores == {"eq5_tags_selected": 2.0, "eq5_precision": 0.5, "eq5_recall": 0.5, "eq5_f1": 0.5}
    none = {r["metric"]: r["value"] for r in CT.eq5_scores(prompts, TAGS, truth, delta=0.9)}
    assert none["eq5_tags_selected"] == 0.0 and np.isnan(none["eq5_precision"]) and none["eq5_recall"] == 0.0


def test_delta_calibration_takes_the_best_f1_and_the_larger_delta_on_ties():
    # a: rock 0.894, happy 0.447; b: jazz 0.894, dark 0.447. Truth: only the genre.
    prompts = {"a": _unit(2, 0, 1, 0), "b": _unit(0, 2, 0, 1)}
    truth = pd.DataFrame({"song_id": ["a", "b"], "family": ["genre", "genre"], "tag": ["rock", "jazz"]})
    delta, curve = CT.calibrate_delta(prompts, TAGS, truth, grid=[0.0, 0.3, 0.5, 0.8, 0.95])
    # 0.5 and 0.8 both select exactly the genre (F1 = 1): the larger delta wins the tie
    assert delta == 0.8
    f1 = dict(zip(curve["delta"], curve["f1"], strict=True))
    assert f1[0.3] == pytest.approx(2 / 3) and f1[0.95] == 0.0 and f1[0.0] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="calibration needs"):
        CT.calibrate_delta({}, TAGS, truth)
