"""The LM's vocabulary, sequences, text tokenizer, training, saving and the thought NLL comparison."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from musicot.config import validate
from musicot.lm import evaluate as nll
from musicot.lm.data import thought_rows
from musicot.lm.model import ModelSize, MusicLM, load_lm, save_lm
from musicot.lm.sequence import IGNORE, PART_AUDIO, PART_THOUGHT, example, unflatten_thought
from musicot.lm.text import lyrics_text, section_token, tags_text, train_tokenizer
from musicot.lm.train import train
from musicot.lm.vocab import SPECIALS, Vocab
from musicot.report.loss_curve import plot_history
from tests.lm.synthetic import lm_config, make_lm_data


@pytest.mark.parametrize("sizes", [(1, 1, 2, 1), (30522, 8, 1024, 1024), (997, 4, 64, 256), (5, 3, 7, 11)])
def test_vocabulary_ranges_never_overlap_and_cover_every_id(sizes):
    vocab = Vocab(*sizes)
    spans = sorted(vocab.ranges().values())
    assert spans[0][0] == 0 and spans[-1][1] == vocab.size
    for (lo, hi), (next_lo, _) in itertools.pairwise(spans):
        assert lo < hi == next_lo  # contiguous, disjoint, none empty
    ids = {vocab.special(name) for name in SPECIALS}
    assert len(ids) == len(SPECIALS) and all(vocab.ranges()["specials"][0] <= i < vocab.rvq_base for i in ids)
    assert Vocab.from_json(json.loads(json.dumps(vocab.to_json()))) == vocab


def test_sequence_layout_labels_and_parts():
    vocab = Vocab(50, 2, 4, 10)
    thought = np.array([[1, 3], [0, 2], [3, 3]])
    ex = example(vocab, [5, 6], [7], thought, np.array([0, 9, 4]))
    ids = ex.ids.tolist()
    start = ids.index(vocab.special("<cot_bos>")) + 1
    flat = ids[start : start + 6]
    assert flat == [vocab.rvq_range(0)[0] + c for c in (1, 0, 3)] + [vocab.rvq_range(1)[0] + c for c in (3, 2, 3)]
    assert (unflatten_thought(vocab, flat, 3) == thought).all()
    assert ids[-5:] == [
        vocab.special("<aud_bos>"),
        *(vocab.semantic_base + np.array([0, 9, 4])),
        vocab.special("<aud_eos>"),
    ]
    # Labels: next token where it is thought or audio, IGNORE on conditions and on the forced <aud_bos>.
    scored = ex.labels != IGNORE
    assert (ex.labels[:-1][scored[:-1]] == ex.ids[1:][scored[:-1]]).all()
    assert (ex.parts == PART_THOUGHT).sum() == 6 + 1  # M*L codes and <cot_eos>
    assert (ex.parts == PART_AUDIO).sum() == 3 + 1  # the tokens and <aud_eos>
    assert vocab.special("<aud_bos>") not in ex.labels
    base = example(vocab, [5, 6], [7], None, np.array([0, 9, 4]), end=False)
    assert vocab.special("<cot_bos>") not in base.ids and base.ids[-1] == vocab.semantic_base + 4
    with pytest.raises(ValueError, match="outside"):
        example(vocab, [], [], thought, np.array([10]))


def test_thought_frames_cover_the_song_with_non_overlapping_windows():
    starts = np.arange(0, 30, 5.0)  # 10 s windows every 5 s of a 37 s song: the last starts at 25
    assert thought_rows(starts, 37.0, 10.0) == [0, 2, 4, 5]  # 0, 10, 20, then the tail window
    assert thought_rows(np.array([0.0]), 6.0, 10.0) == [0]
    assert len(thought_rows(np.arange(0, 41, 5.0), 50.0, 10.0)) == 5


def test_tokenizer_keeps_section_tags_whole_and_loads_with_transformers(tmp_path):
    tok = train_tokenizer(["walking down the river tonight", "genre: rock; mood: calm"] * 3, 120, 1)
    sheet = lyrics_text(
        pd.DataFrame({"text": ["walking down", "the river"], "start": [1.0, 12.0]}),
        pd.DataFrame({"label": ["verse", "chorus"], "start": [0.0, 10.0], "end": [10.0, 20.0]}),
    )
    assert sheet.splitlines() == ["[VERSE]", "walking down", "[CHORUS]", "the river"]
    pieces = tok.tokenize(sheet + " [BRIDGE]")
    assert "[VERSE]" in pieces and "[CHORUS]" in pieces and "[BRIDGE]" in pieces
    assert section_token("pre-chorus") == "[PRECHORUS]"
    assert tags_text({"mood": ["calm"], "genre": ["rock", "pop"]}) == "genre: rock, pop; mood: calm"
    tok.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert loaded(sheet)["input_ids"] == tok(sheet)["input_ids"]


def test_trained_lm_learns_and_loads_back_with_from_pretrained(tmp_path):
    paths = make_lm_data(tmp_path / "d")
    config = validate(lm_config(steps=60))
    metrics = train(config, "musicot", paths["data"], paths["embeddings"], tmp_path / "m", tmp_path / "s")
    losses = [loss for _, loss in metrics["history"]["train"]]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"train_thought_loss", "train_audio_loss", "valid_thought_loss", "valid_audio_loss"} <= set(metrics["final"])
    # A uniform guess costs ln(32) per audio token; the thought says which 4 tokens a song uses.
    assert metrics["final"]["train_audio_loss"] < math.log(32)
    llama = LlamaForCausalLM.from_pretrained(tmp_path / "m")
    lm = load_lm(tmp_path / "m")
    for name, value in llama.state_dict().items():
        assert torch.equal(value, lm.llama.state_dict()[name]), name
    assert (tmp_path / "m" / "model.safetensors").exists()


def test_save_and_load_keep_the_clap_prefix(tmp_path):
    vocab = Vocab(20, 2, 4, 8)
    model = MusicLM.build(ModelSize(16, 1, 2, 1, 32, 64), vocab, clap_dim=6).eval()
    save_lm(model, tmp_path)
    loaded = load_lm(tmp_path)
    ids = torch.tensor([[vocab.special("<clap>"), vocab.special("<tags>"), 3]])
    clap = torch.randn(1, 6)
    for keep in (True, False):
        keep_t = torch.tensor([keep])
        assert torch.allclose(model(ids, clap, keep_t).logits, loaded(ids, clap, keep_t).logits)
    # The prefix matters: the null vector and a CLAP embedding give different predictions.
    assert not torch.allclose(
        model(ids, clap, torch.tensor([True])).logits, model(ids, clap, torch.tensor([False])).logits
    )


def test_nll_comparison_uses_derangements_and_reports_intervals(tmp_path):
    rng = np.random.default_rng(0)
    for n in (2, 3, 9):
        perm = nll.derangement(n, rng)
        assert sorted(perm) == list(range(n)) and (perm != np.arange(n)).all()
    lo, hi = nll.bootstrap(np.array([1.0, 2.0, 3.0, 4.0]), 500, 0.9, rng)
    assert 1.0 <= lo < 2.5 < hi <= 4.0
    # Short songs: the audio context soon reveals a song's palette, so the thought matters most early on.
    paths = make_lm_data(tmp_path / "d", n_songs=14, audio=10)
    config = validate(lm_config(steps=80))
    config["lm"]["eval"]["splits"] = ["valid", "reference", "train"]
    for system in ("musicot", "base"):
        train(config, system, paths["data"], paths["embeddings"], tmp_path / system, tmp_path / f"{system}_state")
    table, per_song = nll.evaluate(config, paths["data"], paths["embeddings"], tmp_path / "musicot", tmp_path / "base")
    row = table.set_index("quantity")
    assert list(row.index) == ["true_thought", "shuffled_thought", "base", "shuffled_minus_true", "base_minus_true"]
    assert (row["ci_low"] <= row["mean"]).all() and (row["mean"] <= row["ci_high"]).all()
    assert len(per_song) == 14
    # In this data the thought fixes the song's audio palette: a wrong thought must cost the LM.
    assert row.loc["shuffled_minus_true", "ci_low"] > 0


def test_loss_curve_figure(tmp_path):
    history = {
        "train": [(10, 3.0), (20, 2.0)],
        "eval": [(0, {"valid_audio_loss": 3.1}), (20, {"valid_audio_loss": 2.2})],
    }
    plot_history(history, [tmp_path / "c.pdf", tmp_path / "c.png"], "t")
    assert (tmp_path / "c.pdf").stat().st_size > 0 and (tmp_path / "c.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no training loss"):
        plot_history({"train": []}, [tmp_path / "x.png"])


def test_reference_thought_takes_the_frames_a_training_song_would():
    from musicot.lm.reference import thought_of_windows

    starts = np.arange(0, 30, 5.0)  # a 37 s reference in 10 s windows at a 5 s hop
    table = pd.DataFrame({"start": starts, "end": np.minimum(starts + 10, 37.0)})
    table["code_0"], table["code_1"] = np.arange(6), np.arange(6) + 10
    thought = thought_of_windows(table.sample(frac=1, random_state=0), 10.0, 37.0)
    assert thought.tolist() == [[0, 10], [2, 12], [4, 14], [5, 15]]
    # a 40.3 s song: its last window ends at 40 s, yet the 0.3 s tail is a fifth frame, as in training
    assert len(thought_of_windows(table.assign(end=table.start + 10), 10.0, 40.3)) == 5
    with pytest.raises(ValueError, match="no codes"):
        thought_of_windows(table[["start", "end"]], 10.0, 37.0)
