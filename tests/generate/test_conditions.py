"""Eq. 5 conditions of the evaluation prompts on hand-built embeddings: tags, lyrics, precision and recall."""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicot.generate.conditions import condition_rows, quality_rows, read_delta, tags_by_family
from musicot.generate.prompts import EvalPrompt

VOCAB = {"genre": ["rock", "jazz"], "mood": ["happy", "sad"], "instrument": ["piano", "drums"]}
NAMES = [t for family in VOCAB.values() for t in family]
TAG_VECTORS = dict(zip(NAMES, np.eye(len(NAMES)), strict=True))


def prompt(pid: str, genre: str, mood: str, instruments: tuple[str, ...]) -> EvalPrompt:
    return EvalPrompt(pid, f"a {genre} song", "[VERSE]\\nla la", genre, "", "", mood, instruments, ())


def test_condition_rows_select_tags_and_score_them():
    prompts = [prompt("p1", "rock", "happy", ("piano",)), prompt("p2", "jazz", "sad", ())]
    # p1 is close to rock, happy and drums; p2 to nothing above delta
    v1 = np.array([0.8, 0.0, 0.5, 0.0, 0.0, 0.4])
    v2 = -np.ones(6)  # cosine -0.41 with every tag
    table = condition_rows(prompts, np.stack([v1, v2]), TAG_VECTORS, 0.3, VOCAB).set_index("prompt_id")
    assert table.loc["p1", "tags_text"] == "genre: rock; mood: happy; instrument: drums"
    assert table.loc["p1", "n_tags"] == 3
    assert table.loc["p1", "tag_precision"] == pytest.approx(2 / 3) and table.loc["p1", "tag_recall"] == pytest.approx(
        2 / 3
    )
    assert table.loc["p2", "tags_text"] == "" and np.isnan(table.loc["p2", "tag_precision"])
    assert table.loc["p2", "tag_recall"] == 0.0
    assert table.loc["p1", "lyrics_text"] == prompts[0].lyrics  # section lines are the LM's tokens already
    rows = {r["metric"]: r["value"] for r in quality_rows(table.reset_index(), 0.3)}
    assert rows["eq5_tags_selected"] == pytest.approx(1.5) and rows["eq5_recall"] == pytest.approx(1 / 3)


def test_tags_by_family_keeps_selection_order():
    assert tags_by_family(["drums", "rock", "piano"], VOCAB) == {"instrument": ["drums", "piano"], "genre": ["rock"]}


def test_read_delta(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"delta": 0.42, "source": "calibrated"}))
    bad.write_text(json.dumps({"delta": None}))
    assert read_delta(good) == 0.42
    with pytest.raises(ValueError, match="holds no delta"):
        read_delta(bad)


def test_max_tags_keeps_the_most_similar_but_scores_the_whole_selection():
    prompts = [prompt("p1", "rock", "happy", ("piano",))]
    v1 = np.array([0.8, 0.0, 0.5, 0.0, 0.0, 0.4])
    row = condition_rows(prompts, v1[None], TAG_VECTORS, 0.3, VOCAB, max_tags=1).iloc[0]
    assert row["tags_text"] == "genre: rock" and row["n_tags_used"] == 1
    assert row["n_tags"] == 3 and row["tag_precision"] == pytest.approx(2 / 3)
