"""Paired FAD differences between systems and the verdict on the paper's orderings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.metrics.compare import compare, paired_fad_delta, verdict
from musicot.metrics.evaluate import save_embeddings


@pytest.mark.parametrize(
    ("paper", "delta", "low", "high", "expected"),
    [
        (0.01, 0.2, 0.1, 0.3, "holds"),
        (0.01, -0.2, -0.3, -0.1, "reversed"),
        (0.01, 0.05, -0.1, 0.2, "CI includes 0 (paper's sign)"),
        (0.01, -0.05, -0.2, 0.1, "CI includes 0 (other sign)"),
        (-0.02, -0.2, -0.3, -0.1, "holds"),
        (None, 0.1, 0.0, 0.2, "no ordering in the paper"),
    ],
)
def test_verdict(paper, delta, low, high, expected):
    assert verdict(paper, delta, low, high) == expected


def _set(rng, n_songs: int, shift: float, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((n_songs, d)) + shift, np.array([f"p{k:03d}" for k in range(n_songs)])


def test_a_shifted_system_is_worse_and_a_copy_is_equal():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((400, 4))
    good, songs = _set(rng, 120, 0.0)
    bad, _ = _set(rng, 120, 1.5)
    delta, low, high, n = paired_fad_delta(bad, songs, good, songs, reference, 200, 0.95, rng)
    assert n == 120 and delta > 1.0 and low > 0
    delta, low, high, _ = paired_fad_delta(good, songs, good, songs, reference, 200, 0.95, rng)
    assert delta == 0.0 and low == 0.0 and high == 0.0  # the same resample in both: exactly 0


def test_compare_reads_folders_and_pairs_with_the_paper(tmp_path):
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((200, 4))
    save_embeddings(
        pd.DataFrame({"song": [f"r{k}" for k in range(200)], "set": "reference"}), reference, tmp_path / "ref"
    )
    for name, shift in (("musicot", 0.0), ("base", 2.0)):
        emb, songs = _set(rng, 60, shift)
        save_embeddings(pd.DataFrame({"song": songs}), emb.astype(np.float32), tmp_path / name)
    paper = {"own": [{"system": "base", "FAD": 0.112}, {"system": "musicot", "FAD": 0.102}]}
    table = compare({p: tmp_path / p for p in ("musicot", "base")}, tmp_path / "ref", paper, "musicot", 100, 0.95, 0)
    row = table.iloc[0]
    assert row["system"] == "base" and row["versus"] == "musicot"
    assert row["paper_delta"] == pytest.approx(0.01) and row["verdict"] == "holds"
