"""The acoustic table: chain metrics pivoted by version, model rows and speed from the stage's outputs."""

from __future__ import annotations

import pandas as pd

from musicot.report.acoustic_table import acoustic_table, chain_rows


def _quality() -> pd.DataFrame:
    rows = [
        ("original", "clap_cosine", 1.0, 18),
        ("vae_reconstruction", "clap_cosine", 0.2, 18),
        ("resynthesis", "clap_cosine", 0.6, 18),
        ("original", "auc_vocals", float("nan"), 18),
        ("vae_reconstruction", "si_sdr_db", -3.0, 6),
        ("speed", "DiT sampling", 8.0, 6),
    ]
    return pd.DataFrame([dict(version=v, metric=m, value=x, n=n, note="") for v, m, x, n in rows])


def _history(key: str, first: float, last: float) -> dict:
    return {"train": [(10, 1.0), (40, 0.5)], "eval": [(0, {key: first}), (40, {key: last})]}


def test_chain_rows_put_versions_in_columns_in_chain_order():
    table = chain_rows(_quality())
    assert list(table.columns) == ["part", "metric", "original", "vae_reconstruction", "resynthesis", "n"]
    cosine = table[table.metric == "CLAP cosine to the original"].iloc[0]
    assert (cosine.original, cosine.vae_reconstruction, cosine.resynthesis, cosine.n) == (1.0, 0.2, 0.6, 18)
    assert "SI-SDR (dB)" in set(table.metric)
    assert "DiT sampling" not in set(table.metric)  # speed rows are model rows, not chain rows


def test_acoustic_table_names_the_space_and_each_models_numbers():
    vae = {
        "history": _history("valid_stft_loss", 3.9, 2.9),
        "parameters": {"vae": 1000, "discriminator": 10},
        "latent_dim": 8,
        "frame_rate": 31.25,
        "walls_s": {"train": 12.0},
    }
    dit = {"history": _history("valid_loss", 1.2, 0.5), "parameters": 500, "walls_s": {"train": 30.0}}
    table = acoustic_table(_quality(), vae, dit, "mel")
    value = dict(zip(table.metric, table.value, strict=False))
    assert "space the DiT models: mel" in value
    assert value["optimizer steps"] == 40 and value["valid MR-STFT loss, last"] == 2.9
    assert value["valid v-loss, last (conditional)"] == 0.5
    assert value["DiT sampling: audio seconds per wall second"] == 8.0
    pretrained = acoustic_table(_quality(), {"pretrained": "/x/vae", "history": {"train": [], "eval": []}}, dit, "vae")
    assert any(m.startswith("loaded from /x/vae") for m in pretrained.metric)
