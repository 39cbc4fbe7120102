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
