"""Analyzability on the shifted corpus: a tiny random CLAP and RVQ on two short shifted songs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from musicot.analysis.analyzability import ANCHORS
from musicot.analysis.shifted import SHIFTED_COLUMNS, run
from musicot.clap import model as M
from musicot.config import validate
from musicot.data.shifted import make_corpus
from musicot.rvq.model import RvqConfig, save_rvq, train_rvq

WINDOW_S, HOP_S = 2.0, 1.0


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("shifted")
    config = validate(
        {
            "seed": 3,
            "corpus": {"sample_rate": 16000},
            "clap": {"window_s": WINDOW_S, "hop_s": HOP_S},
            "analysis": {"shifted": {"n_songs": 2, "duration_s": [8, 9], "absent_fraction": 0.0}},
            "rvq": dict(levels=2, codebook_size=4, kmeans_iters=5, threshold_ema_dead_code=0, steps=3, batch_size=64),
        }
    )
    make_corpus(config, root / "corpus")
    torch.manual_seed(0)
    clap = M.build(M.preset_spec("tiny", window_s=WINDOW_S))
    M.save(clap, root / "clap")
    emb = np.random.default_rng(0).standard_normal((128, clap.joint_dim)).astype(np.float32)
    rvq_cfg = RvqConfig.from_config(config)
    rvq, _ = train_rvq(emb / np.linalg.norm(emb, axis=1, keepdims=True), rvq_cfg, root / "rvq_state")
    save_rvq(rvq, rvq_cfg, clap.joint_dim, root / "rvq")
    (root / "emb").mkdir()
    pd.DataFrame({"text": list(ANCHORS), "kind": "anchor"}).to_parquet(root / "emb" / "text.parquet")
    np.save(root / "emb" / "text.npy", clap.embed_text(list(ANCHORS)))
    rows, windows = run(config, root / "corpus" / "tracks.parquet", root / "clap", root / "emb", root / "rvq")
    return config, rows, windows


def test_rows_cover_every_anchor_on_both_embeddings(analysed):
    _, rows, windows = analysed
    assert list(rows.columns) == SHIFTED_COLUMNS
    assert set(rows["corpus"]) == {"shifted"}
    assert sorted(zip(rows["embedding"], rows["anchor"], strict=True)) == sorted(
        (e, a) for e in ("quantized", "raw") for a in ANCHORS
    )
    assert set(rows["stems"]) == {"truth"}
    assert windows["song_id"].nunique() == 2
    assert (windows["end"] - windows["start"]).eq(WINDOW_S).all()


def test_pooled_r_is_the_pearson_of_the_window_table(analysed):
    config, rows, windows = analysed
    floor = config["analysis"]["min_mean_volume"]
    for anchor in ANCHORS:
        row = rows[(rows["anchor"] == anchor) & (rows["embedding"] == "quantized")].iloc[0]
        table = windows[["song_id", f"sim_{anchor}", f"volume_truth_{anchor}"]].dropna()
        kept = table[table.groupby("song_id")[f"volume_truth_{anchor}"].transform("mean") >= floor]
        assert row["n_windows"] == len(kept)
        if len(kept) > 2 and kept[f"sim_{anchor}"].std() > 0:
            expected = np.corrcoef(kept[f"sim_{anchor}"], kept[f"volume_truth_{anchor}"])[0, 1]
            assert row["r_pooled"] == pytest.approx(expected, abs=1e-9)


def test_r_by_property_groups_the_windows_of_the_songs_that_drew_each_value():
    from musicot.analysis.shifted import PROPERTY_COLUMNS, by_property

    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 1, 40)
    per_window = pd.DataFrame(
        {
            "song_id": np.repeat(["a", "b", "c", "d"], 10),
            "volume_truth_bass": volume,
            # songs a and b (kit 16) follow the bass volume; c and d (kit 25) run against it
            "sim_bass": np.where(np.arange(40) < 20, volume, -volume),
        }
    )
    songs = pd.DataFrame(
        {
            "song_id": list("abcd"),
            "drum_kit": [16, 16, 25, 25],
            "tempo_bpm": [70, 160, 70, 160],
            "absent": ["", "piano", "", ""],
            "mode": ["dorian"] * 4,
            **{f"program_{s}": [1, 1, 1, 1] for s in ("bass", "piano", "guitar", "other")},
        }
    )
    table = by_property(per_window, songs, ["bass"], [[62, 78], [152, 172]])
    assert list(table.columns) == PROPERTY_COLUMNS
    r = table.set_index(["property", "value"])["r_pooled"]
    assert r["drum_kit", "16"] == pytest.approx(1.0) and r["drum_kit", "25"] == pytest.approx(-1.0)
    assert set(table[table.property == "tempo"]["value"]) == {"62-78 BPM", "152-172 BPM"}
    assert set(table[table.property == "absent"]["value"]) == {"none", "piano"}
    assert table.set_index(["property", "value"]).loc[("drum_kit", "16"), "n_songs"] == 2
    assert r["absent", "piano"] == pytest.approx(1.0)  # song b alone
    assert r["mode", "dorian"] < 0.2  # all four songs: the two halves cancel
