"""results/tables: the thought table from the CLAP, RVQ and analyzability outputs, in all three formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from musicot import plan as P
from musicot.report.tables import main, semantic_table, thought_table


def _inputs(tmp_path):
    quality = pd.DataFrame(
        dict(
            step="clap",
            metric=["recall@1", "recall@5", "chance@1", "chance@5", "n_captions", "auc_vocals", "auc_bass", "auc_mean"],
            value=[0.4, 0.9, 0.1, 0.5, 10, 0.8, np.nan, 0.8],
            n=12,
            note="valid split",
        )
    )
    train = {"train_wall_s": 61.5, "valid": {}}
    level = {f"{k}_l{i}": v for i in (1, 2) for k, v in (("cos", 0.5 * i), ("perplexity", 3.0 * i), ("dead", 4 - i))}
    rvq = {
        "valid": level,
        "train": {},
        "config": {"codebook_size": 8, "levels": 2},
        "eval_rows": 20,
        "train_wall_s": 2.0,
    }
    analysis = pd.DataFrame(
        dict(
            anchor=["vocals", "vocals", "vocals"],
            stems=["truth", "separated", "truth"],
            embedding=["quantized", "quantized", "raw"],
            r_pooled=[0.51234, 0.3, 0.6],
            r_per_song_mean=[0.4, 0.2, 0.5],
            n_windows=[30, 28, 30],
            n_songs=[3, 3, 3],
            n_excluded=[0, 0, 0],
            paper_r=[0.689, 0.689, 0.689],
        )
    )
    paths = {name: tmp_path / name for name in ("quality.csv", "train.json", "rvq.json", "analysis.csv")}
    quality.to_csv(paths["quality.csv"], index=False)
    paths["train.json"].write_text(json.dumps(train))
    paths["rvq.json"].write_text(json.dumps(rvq))
    analysis.to_csv(paths["analysis.csv"], index=False)
    return quality, train, rvq, analysis, paths


def test_thought_table_puts_each_number_beside_its_reference(tmp_path):
    quality, train, rvq, analysis, _ = _inputs(tmp_path)
    table = thought_table(quality, train, rvq, analysis).set_index("metric")
    assert tuple(table.loc["recall@1", ["ours", "compare with", "which is", "n"]]) == (0.4, 0.1, "chance", 12)
    assert tuple(table.loc["recall@5", ["ours", "compare with"]]) == (0.9, 0.5)
    assert table.loc["AUC vocals", "compare with"] == 0.5 and np.isnan(table.loc["AUC bass", "ours"])
    assert "chance@1" not in table.index and "n_captions" not in table.index
    rvq_rows = table[table["part"] == "RVQ (valid split)"]
    assert len(rvq_rows) == 2 * 3 + 1  # cosine, perplexity, dead codes per level + wall time
    assert tuple(rvq_rows.loc["level 2: perplexity", ["ours", "compare with", "n"]]) == (6.0, 8.0, 20)
    assert rvq_rows.loc["level 1: dead codes", "ours"] == 3
    r = table[table["part"] == "analyzability r"]
    assert r.loc["vocals: thought vs truth stems", "ours"] == pytest.approx(0.512)
    assert r.loc["vocals: thought vs separated stems", "compare with"] == 0.689
    assert r.loc["vocals: raw CLAP vs truth stems", "which is"] == "paper"
    assert [m for m in table.index if m.startswith("AUC")] == ["AUC vocals", "AUC bass", "AUC mean"]  # file order


def test_shifted_rows_sit_beside_the_held_out_r_pooled_and_per_song(tmp_path):
    *_, analysis, _ = _inputs(tmp_path)
    shifted = analysis[analysis["stems"] == "truth"].assign(
        corpus="shifted", r_pooled=[0.2, 0.3], r_per_song_mean=[0.7, 0.8]
    )
    shifted["n_songs"] = 16
    table = thought_table(analyzability=analysis, shifted=shifted).set_index("metric")
    per_song = table[table["part"] == "analyzability r"].loc["vocals: thought vs truth stems, per-song mean"]
    assert (per_song["ours"], per_song["n"]) == (0.4, 3)
    rows = table[table["part"] == "analyzability r, shifted corpus"]
    assert len(rows) == 2 * 2 and set(rows["which is"]) == {"held-out corpus songs"}
    pooled = rows.loc["vocals: thought vs truth stems, pooled"]
    assert (pooled["ours"], pooled["compare with"], pooled["n"]) == (0.2, pytest.approx(0.512), 30)
    song = rows.loc["vocals: raw CLAP vs truth stems, per-song mean"]
    assert (song["ours"], song["compare with"], song["n"]) == (0.8, 0.5, 16)


def test_by_property_table_has_one_row_per_drawn_value():
    from musicot.report.tables import by_property_table

    rows = pd.DataFrame(
        dict(
            property=["drum_kit"] * 4 + ["mode"] * 2,
            value=["16", "16", "25", "25", "dorian", "dorian"],
            anchor=["bass", "drums"] * 3,
            r_pooled=[-0.2, 0.4, np.nan, 0.8, 0.1, 0.6],
            n_windows=[30, 30, 20, 20, 50, 50],
            n_songs=[4, 4, 3, 3, 7, 7],
        )
    )
    table = by_property_table(rows)
    assert list(table.columns) == ["property", "value", "r bass", "r drums", "songs", "windows"]
    assert list(zip(table["property"], table["value"], strict=True)) == [
        ("drum_kit", "16"),
        ("drum_kit", "25"),
        ("mode", "dorian"),
    ]
    assert table["r bass"].iloc[0] == -0.2 and np.isnan(table["r bass"].iloc[1]) and table["songs"].iloc[2] == 7


def test_rvq_without_valid_windows_reports_train(tmp_path):
    _, _, rvq, _, _ = _inputs(tmp_path)
    rvq = {**rvq, "valid": None, "train": rvq["valid"], "train_rows": 50}
    table = thought_table(rvq_metrics=rvq)
    assert set(table["part"]) == {"RVQ (train split)"}
    assert table.loc[table["metric"] == "level 1: perplexity", "n"].item() == 50


def test_cli_writes_thought_in_three_formats(tmp_path):
    *_, paths = _inputs(tmp_path)
    summary = pd.DataFrame(
        dict(split=["all"], songs=[3], minutes=[0.5], vocal_songs=[3], disk_mb=[1.0], rejected=[0], build_cpu_s=[9.0])
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    out = tmp_path / "tables"
    main(
        [
            *("--corpus-summary", str(tmp_path / "summary.csv"), "--out", str(out)),
            *("--clap-quality", str(paths["quality.csv"]), "--clap-train", str(paths["train.json"])),
            *("--rvq-metrics", str(paths["rvq.json"]), "--analyzability", str(paths["analysis.csv"])),
        ]
    )
    csv = pd.read_csv(out / "thought.csv")
    assert list(csv.columns) == ["part", "metric", "ours", "compare with", "which is", "n"]
    assert len(csv) == 6 + 7 + 3 + 2  # CLAP (2 recall, 3 AUC, wall time) + RVQ + analyzability (+ per song, truth)
    md = (out / "thought.md").read_text()
    assert "| vocals: thought vs truth stems" in md and "nan" not in md
    assert "\\begin{table}" in (out / "thought.tex").read_text()


def test_absent_results_get_a_row_with_their_reason_and_no_number(tmp_path):
    quality, train, rvq, *_ = _inputs(tmp_path)
    absent = {P.CLAP_STEM_AUC: "no true stems.", P.ANALYSIS_TRUTH: "no true stems!", P.VAD: "no separated vocals."}
    table = thought_table(quality, train, rvq, None, absent)
    assert not table["metric"].str.startswith("AUC").any()  # no stems: no AUC number, one row says why
    rows = table[table["metric"].str.startswith("absent")].set_index("part")
    assert set(rows.index) == {P.CLAP_STEM_AUC, P.ANALYSIS_TRUTH} and rows["ours"].isna().all()
    assert rows.loc[P.ANALYSIS_TRUTH, "metric"] == "absent: no true stems!"
    # a metric measured on no window (an empty valid split) has no number either
    empty = quality.assign(n=0)
    clap = thought_table(empty, train)
    unmeasured = "recall@1, recall@5, AUC vocals, AUC bass, AUC mean"
    assert list(clap["metric"]) == [f"absent: no held-out window to measure {unmeasured} on", "training wall time (s)"]
    summary = pd.DataFrame(
        dict(split=["all"], songs=[3], minutes=[0.5], vocal_songs=[3], disk_mb=[1.0], rejected=[0], build_cpu_s=[9.0])
    )
    summary.to_csv(tmp_path / "summary.csv", index=False)
    prep = pd.DataFrame(dict(step=["tags"], metric=["oov_tags"], value=[0.0], n=[3], note=[""]))
    prep.to_csv(tmp_path / "prep.csv", index=False)
    out = tmp_path / "tables"
    base = ["--corpus-summary", str(tmp_path / "summary.csv"), "--prep-quality", str(tmp_path / "prep.csv")]
    main([*base, "--absent", json.dumps(absent), "--out", str(out)])
    listed = pd.read_csv(out / "absent.csv")
    assert list(listed["result"]) == list(absent) and list(listed["absent because"]) == list(absent.values())
    prep_table = pd.read_csv(out / "prep_quality.csv")
    assert prep_table.loc[prep_table.step == P.VAD, ["metric", "note"]].values.tolist() == [
        ["absent", "no separated vocals."]
    ]
    main([*base, "--out", str(out)])
    assert pd.read_csv(out / "absent.csv")["result"].tolist() == ["(none)"]


def test_semantic_table_holds_probes_losses_nll_intervals_and_sampler_speed():
    quality = pd.DataFrame(
        [dict(step="probe", metric="sung: layer 2", value=0.81, n=900, note="balanced accuracy; majority 0.5")]
    )
    lm = {
        "system": "musicot",
        "n_params": 1200,
        "train_wall_s": 9.5,
        "final": {
            "train_thought_loss": 3.1,
            "train_audio_loss": 4.2,
            "valid_thought_loss": 3.5,
            "valid_audio_loss": 4.4,
        },
    }
    nll = pd.DataFrame(
        [
            dict(
                quantity="shuffled_minus_true",
                mean=0.12,
                ci_low=0.05,
                ci_high=0.2,
                n_songs=13,
                n_tokens=2600,
                confidence=0.95,
            )
        ]
    )
    bench = pd.DataFrame(
        [dict(sampler="cached", batch=8, tokens=900, seconds=1.0, tokens_per_s=900.0, speedup_vs_naive_b1=12.0)]
    )
    absent = {P.SEMANTIC_CTC: "no timed lyrics.", P.SEPARATOR: "no stems."}
    table = semantic_table(quality, [lm], nll, bench, absent).set_index("metric")
    assert table.loc["sung: layer 2", "ours"] == 0.81 and table.loc["sung: layer 2", "n"] == 900
    assert table.loc["valid thought loss (nats/token)", "ours"] == 3.5
    row = table.loc["shuffled - true (paired, > 0: the thought informs)"]
    assert (row["ours"], row["ci low"], row["ci high"], row["n"]) == (0.12, 0.05, 0.2, 13)
    assert table.loc["cached batch 8: tokens/s", "compare with"] == 12.0
    assert "absent: no timed lyrics." in table.index and "absent: no stems." not in table.index
