"""Audiobox-Aesthetics inference on a randomly initialised model: loading, windowing, weighting, tables.

Random weights give meaningless scores; these tests check the code path and the arithmetic only.
The model is the full 95M-parameter WavLM (its size is fixed by the package), so it is built once
and every 10 s window run through it is counted: ten here.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from audiobox_aesthetics.model.aes import AesMultiOutput

from musicot.metrics.aesthetics import (
    AXES,
    NO_CHECKPOINT,
    SAMPLE_RATE,
    WINDOW,
    AestheticsScorer,
    cut_windows,
    main,
    prepare_audio,
    score_songs,
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*weight_norm.*:FutureWarning", "ignore:Support for mismatched key_padding_mask:UserWarning"
)

TRANSFORM = {
    "CE": {"mean": 5.5, "std": 1.5},
    "CU": {"mean": 6.0, "std": 1.2},
    "PC": {"mean": 4.0, "std": 2.0},
    "PQ": {"mean": 7.0, "std": 0.8},
}
# The released model says bf16; the CPU path must work with it.
MODEL_CFG = {
    "proj_num_layer": 1,
    "proj_ln": False,
    "proj_act_fn": "gelu",
    "proj_dropout": 0,
    "nth_layer": 13,
    "use_weighted_layer_sum": True,
    "precision": "bf16",
    "normalize_embed": True,
    "output_dim": 1,
}


@pytest.fixture(scope="module")
def scorers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AestheticsScorer]]:
    """The same random model saved in both checkpoint formats and loaded back from each."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a small shared machine more threads only contend
    torch.manual_seed(0)
    model = AesMultiOutput(**MODEL_CFG, target_transform=TRANSFORM)
    root = tmp_path_factory.mktemp("aesthetics")
    model.save_pretrained(root / "folder")
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save(
        {"state_dict": state, "model_cfg": {**MODEL_CFG, "lr": 1e-4}, "target_transform": TRANSFORM},
        root / "checkpoint.pt",
    )
    yield {"original": AestheticsScorer.load(root / "checkpoint.pt"), "folder": AestheticsScorer.load(root / "folder")}
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips() -> dict[str, tuple[np.ndarray, int]]:
    rng = np.random.default_rng(0)
    short = (0.1 * rng.standard_normal((2, 3 * 22050))).astype(np.float32)  # stereo, resampled
    t = np.arange(12 * SAMPLE_RATE) / SAMPLE_RATE
    long = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    return {"short": (short, 22050), "long": (long, SAMPLE_RATE)}


@pytest.fixture(scope="module")
def folder_scores(scorers, clips) -> dict[str, dict[str, float]]:
    return {name: scorers["folder"].score(audio, sr) for name, (audio, sr) in clips.items()}


def test_scores_are_four_finite_floats(scorers, folder_scores):
    assert not scorers["folder"].model.training and not scorers["original"].model.training
    for scores in folder_scores.values():
        assert tuple(scores) == AXES
        assert all(isinstance(v, float) and np.isfinite(v) for v in scores.values())


def test_both_formats_give_identical_scores(scorers, clips, folder_scores):
    assert scorers["original"].score(*clips["short"]) == folder_scores["short"]


def test_long_clip_is_length_weighted_mean_of_its_windows(scorers, clips, folder_scores):
    audio, _ = clips["long"]  # already 16 kHz mono: the windows are plain slices
    wav = torch.zeros(2, 1, WINDOW)
    wav[0, 0] = torch.from_numpy(audio[:WINDOW])
    wav[1, 0, : audio.size - WINDOW] = torch.from_numpy(audio[WINDOW:])
    mask = torch.zeros(2, 1, WINDOW, dtype=torch.bool)
    mask[0] = True
    mask[1, 0, : audio.size - WINDOW] = True
    with torch.inference_mode():
        raw = scorers["folder"].model({"wav": wav, "mask": mask})
    for axis in AXES:
        first, last = (raw[axis].double() * TRANSFORM[axis]["std"] + TRANSFORM[axis]["mean"]).tolist()
        assert first != pytest.approx(last, abs=1e-6)  # else the weighting would not show
        expected = (10 / 12) * first + (2 / 12) * last
        assert folder_scores["long"][axis] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_target_transform_mean_shifts_scores(scorers, clips, folder_scores, monkeypatch):
    model = scorers["folder"].model
    shifted = {axis: {"mean": t["mean"] + 1.0, "std": t["std"]} for axis, t in TRANSFORM.items()}
    monkeypatch.setattr(model, "target_transform", shifted)
    scores = AestheticsScorer(model).score(*clips["short"])
    for axis in AXES:
        assert scores[axis] == pytest.approx(folder_scores["short"][axis] + 1.0, abs=1e-6)


def test_cli_scores_files_one_row_each(scorers, clips, folder_scores, tmp_path, monkeypatch, capsys):
    short, sr = clips["short"]
    sf.write(tmp_path / "a.wav", short.T, sr, subtype="FLOAT")  # float WAV: the very samples of the array
    sf.write(tmp_path / "b.flac", short[0, :sr], sr)
    loaded = []
    monkeypatch.setattr(
        AestheticsScorer, "load", staticmethod(lambda c, d="cpu": loaded.append(c) or scorers["folder"])
    )
    out = tmp_path / "scores.csv"
    files = [str(tmp_path / "a.wav"), str(tmp_path / "b.flac")]
    main(["--checkpoint", "ckpt", "--out", str(out), *files])  # both files' windows go in one forward pass
    table = pd.read_csv(out)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert loaded == ["ckpt"]
    assert list(table.columns) == ["song", *AXES] and list(table["song"]) == ["a", "b"]
    for axis in AXES:
        assert table.loc[0, axis] == pytest.approx(folder_scores["short"][axis], abs=1e-5)
        assert summary[axis] == pytest.approx(table[axis].mean())
    assert summary["status"] == "scored" and summary["n_songs"] == 2 and summary["checkpoint"] == "ckpt"


def test_no_checkpoint_scores_nothing(tmp_path, capsys):
    table, summary = score_songs("", [tmp_path / "a.wav"])
    assert table is None
    assert summary == {"status": NO_CHECKPOINT, "CE": None, "CU": None, "PC": None, "PQ": None, "n_songs": 0}
    main(["--checkpoint", "", "--out", str(tmp_path / "scores.csv"), str(tmp_path / "a.wav")])
    assert json.loads(capsys.readouterr().out)["status"] == NO_CHECKPOINT
    assert not (tmp_path / "scores.csv").exists()


def test_missing_or_incomplete_checkpoint_says_what_is_accepted(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pt does not exist.*state_dict.*from_pretrained"):
        AestheticsScorer.load(tmp_path / "nowhere.pt")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"has no model\.safetensors"):
        AestheticsScorer.load(tmp_path / "folder")
    with pytest.raises(ValueError, match="no checkpoint given"):
        AestheticsScorer.load("")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="is not a torch checkpoint"):
        AestheticsScorer.load(tmp_path / "text.pt")
    # A pickled object beyond plain containers takes the full-pickle route; the keys are checked after it.
    torch.save({"hparams": argparse.Namespace(lr=1e-4)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"not an Audiobox-Aesthetics checkpoint.*found \['hparams'\]"):
        AestheticsScorer.load(tmp_path / "other.pt")


def test_bad_audio_raises(scorers):
    with pytest.raises(ValueError, match="NaN"):
        scorers["folder"].score(np.full(SAMPLE_RATE, np.nan, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(ValueError, match="empty"):
        scorers["folder"].score(np.zeros((2, 0), dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(ValueError, match="float samples"):
        prepare_audio(np.zeros(100, dtype=np.int16), SAMPLE_RATE)


def test_windows_are_padded_with_their_real_length():
    wav = np.ones(12 * SAMPLE_RATE, dtype=np.float32)
    windows = cut_windows(wav)
    assert [n for _, n in windows] == [WINDOW, 2 * SAMPLE_RATE]
    assert windows[1][0][: 2 * SAMPLE_RATE].all() and not windows[1][0][2 * SAMPLE_RATE :].any()
    assert len(cut_windows(np.ones(WINDOW, dtype=np.float32))) == 1
    stereo = np.stack([np.ones(800), -np.ones(800)]).astype(np.float32)
    assert np.allclose(prepare_audio(stereo, SAMPLE_RATE), 0.0)
