from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from musicot.semantic.config import SemanticConfig
from musicot.semantic.ctc import CharVocab, cer, greedy_decode
from musicot.semantic.data import normalise_text, timed_lines
from musicot.semantic.train import train
from musicot.training import NoLearningSignal
from tests.semantic.conftest import write_toy_corpus


def test_vocab_round_trip_and_unknown_characters(tmp_path):
    vocab = CharVocab.from_texts(["la la", "sun"])
    assert vocab.chars == ["<blank>", " ", "a", "l", "n", "s", "u"]
    assert vocab.decode(vocab.encode("sun la")) == "sun la"
    assert vocab.encode("sux") == vocab.encode("su")  # unknown characters are dropped from targets
    vocab.save(tmp_path)
    assert CharVocab.load(tmp_path).chars == vocab.chars


def test_greedy_decode_merges_repeats_then_drops_blanks():
    path = [0, 3, 3, 0, 3, 1, 1, 0, 0, 2]
    logits = torch.nn.functional.one_hot(torch.tensor(path), 4).float()
    assert greedy_decode(logits) == [3, 3, 1, 2]
    assert greedy_decode(logits, length=5) == [3, 3]


def test_cer_counts_character_edits_over_reference_characters():
    assert cer(["abc"], ["abc"]) == 0.0
    assert cer(["abcd"], ["abd"]) == pytest.approx(1 / 4)  # one deletion
    assert cer(["ab", "cd"], ["xb", ""]) == pytest.approx(3 / 4)  # one substitution + two deletions
    assert cer(["ab"], ["abzz"]) == pytest.approx(1.0)  # insertions count too
    assert np.isnan(cer([""], ["x"]))


def test_timed_lines_keep_only_lines_with_times_and_text():
    lines = pd.DataFrame(
        {
            "song_id": ["a", "a", "a", "b"],
            "line": [0, 1, 2, 0],
            "text": ["  Hello   World ", "", "x", "y"],
            "start": [0.0, 1.0, np.nan, 0.0],
            "end": [1.0, 2.0, 3.0, 1.0],
        }
    )
    kept = timed_lines(lines, ["a"])
    assert kept["text"].tolist() == ["hello world"] and normalise_text(" A  b ") == "a b"


def test_ctc_refuses_a_corpus_without_timed_lyrics(tmp_path, toy_cfg):
    tracks = write_toy_corpus(tmp_path / "corpus", timed=False)
    with pytest.raises(NoLearningSignal, match=r"semantic\.ctc\.enabled.*no train-split song has timed lyric lines"):
        train(toy_cfg(), tracks, tmp_path / "out", tmp_path / "state")
    assert not (tmp_path / "out").exists()


def test_ctc_runs_and_reports_cer_and_untimed_songs(tmp_path, toy_cfg):
    tracks = write_toy_corpus(tmp_path / "corpus", n_train=3, n_valid=1)
    table = pd.read_parquet(tracks)
    lines = pd.read_parquet(tmp_path / "corpus" / "lyric_lines.parquet")
    lines[lines["song_id"] != "toy00"].to_parquet(tmp_path / "corpus" / "lyric_lines.parquet")  # one song untimed
    assert len(table) == 4
    cfg: SemanticConfig = toy_cfg()
    metrics = train(cfg, tracks, tmp_path / "out", tmp_path / "state")
    ctc = metrics["ctc"]
    assert ctc["songs_train_timed"] == 2 and ctc["songs_train_untimed"] == 1
    assert ctc["lines_valid"] == 1 and ctc["cer_valid_mix"] >= 0.0
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["ctc"]["vocab"] == ctc["vocab"]
    assert (tmp_path / "out" / "ctc_head.safetensors").exists()
