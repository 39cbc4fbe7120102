"""Every trained model's loss in one figure: finding each trainer's histories and drawing them."""

from __future__ import annotations

import json

import pytest

from musicot.report.training_curves import (
    Series,
    main,
    parse_model,
    plot_curves,
    stage_starts,
    training_series,
    wants_log_y,
)


def _history(train, evals) -> dict:
    return {"train": [list(p) for p in train], "eval": [[s, m] for s, m in evals], "seed": 0, "wall_s": 1.0}


def _lm() -> dict:
    evals = [(0, {"valid_audio_loss": 5.0, "valid_thought_loss": 4.0}), (20, {"valid_audio_loss": 3.0})]
    return {"final": {}, "history": _history([(10, 6.0), (20, 2.0)], evals)}


def _clap() -> dict:
    tags = _history([(5, 0.7), (10, 0.5)], [(0, {"tag_auc_vocals": 0.5}), (10, {"tag_auc_vocals": 0.8})])
    contrastive = _history([(10, 3.0), (20, None)], [(20, {"recall@1": 0.2})])  # CLAP writes NaN as null
    return {"valid": {"recall@1": 0.2}, "history": {"tags": tags, "contrastive": contrastive}}


def _semantic() -> dict:
    ssl = {**_history([(4, 9.0), (8, 8.0)], [(8, {"loss": 8.5, "acc": 0.1})]), "chance_acc": 0.01}
    ctc = _history([(2, 40.0)], [(2, {"cer": 0.9})])
    return {"ssl": {"history": ssl, "loss_first_last": [9.0, 8.0]}, "ctc": {"enabled": True, "history": ctc}}


def _rvq() -> dict:
    evals = [(0, {}), (10, {"cos_l1": 0.5, "mse_l1": 0.4, "mse_l2": 0.2, "mse_l10": 0.05})]
    return {"train": {"cos_l1": 0.5}, "valid": None, "history": _history([(10, 0.3)], evals)}


def test_a_single_history_gives_train_and_every_valid_loss():
    series = training_series(_lm())
    assert [(s.label, s.kind, s.steps, s.values) for s in series] == [
        ("train", "train", (10, 20), (6.0, 2.0)),
        ("valid audio loss", "valid", (0, 20), (5.0, 3.0)),
        ("valid thought loss", "valid", (0,), (4.0,)),
    ]


def test_stages_follow_each_other_and_nulls_are_dropped():
    series = training_series(_clap())
    # no loss in CLAP's evaluations: only the two stages' training losses, contrastive shifted past tags
    assert [(s.label, s.stage, s.steps, s.values) for s in series] == [
        ("train (tags)", "tags", (5, 10), (0.7, 0.5)),
        ("train (contrastive)", "contrastive", (20,), (3.0,)),
    ]
    assert stage_starts(series) == [20]


def test_semantic_histories_sit_under_their_sub_models():
    series = training_series(_semantic())
    assert [(s.label, s.steps, s.values) for s in series] == [
        ("train (ssl)", (4, 8), (9.0, 8.0)),
        ("valid loss (ssl)", (8,), (8.5,)),
        ("train (ctc)", (10,), (40.0,)),
    ]


def test_rvq_falls_back_to_the_deepest_reconstruction_mse():
    series = training_series(_rvq())
    assert [(s.label, s.steps, s.values) for s in series] == [
        ("train", (10,), (0.3,)),
        ("valid reconstruction MSE (10 levels)", (10,), (0.05,)),
    ]


def test_no_history_names_the_file():
    with pytest.raises(
        ValueError, match=r"vae/metrics\.json: no training history.*pretrained model /x/vae, not trained"
    ):
        training_series({"pretrained": "/x/vae", "history": {"train": [], "eval": []}}, "vae/metrics.json")
    with pytest.raises(ValueError, match=r"a\.json"):
        training_series({"valid": {"loss": 1.0}}, "a.json")


def test_log_y_only_past_a_decade_of_positive_losses():
    def series(*values):
        return [Series("train", "train", "", tuple(range(len(values))), values)]

    assert wants_log_y(series(50.0, 4.0))
    assert not wants_log_y(series(40.0, 4.0))  # exactly a decade
    assert not wants_log_y(series(50.0, 4.0, -1.0))  # a GAN loss below zero: no log scale
    assert not wants_log_y(training_series(_lm()))  # 2 .. 6


def test_parse_model():
    assert parse_model("rvq=results/rvq/metrics.json")[0] == "rvq"
    with pytest.raises(Exception, match="NAME=PATH"):
        parse_model("results/rvq/metrics.json")


def test_figure_has_a_panel_per_model_and_is_written(tmp_path):
    models = [("lm", training_series(_lm())), ("clap", training_series(_clap())), ("rvq", training_series(_rvq()))]
    fig = plot_curves(models, [tmp_path / "t.pdf", tmp_path / "t.png"])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["lm", "clap", "rvq"]
    assert [line.get_label() for line in visible[0].get_lines()] == ["train", "valid audio loss", "valid thought loss"]
    assert (tmp_path / "t.pdf").stat().st_size > 0 and (tmp_path / "t.png").stat().st_size > 0


def test_cli(tmp_path):
    paths = {}
    for name, metrics in (("lm", _lm()), ("semantic", _semantic())):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(metrics))
    out = tmp_path / "f.png"
    main(["--model", *(f"{k}={v}" for k, v in paths.items()), "--out", str(out)])
    assert out.stat().st_size > 0
