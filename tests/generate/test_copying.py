"""Copying metrics: longest shared run and n-gram overlap by hand, and the paired summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.generate.copying import longest_common_run, ngram_overlap, summarise


@pytest.mark.parametrize(
    ("a", "b", "run"),
    [
        ([1, 2, 3, 4], [9, 2, 3, 4, 9], 3),
        ([1, 2, 3], [4, 5, 6], 0),
        ([5, 5, 5, 5], [5, 5], 2),
        ([], [1, 2], 0),
        ([7, 1, 2, 7, 1, 2, 3], [0, 1, 2, 3, 0], 3),
    ],
)
def test_longest_common_run(a, b, run):
    assert longest_common_run(a, b) == run


def test_longest_common_run_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 3, 15), rng.integers(0, 3, 20)
        brute = max(
            (
                k
                for i in range(len(a))
                for k in range(1, len(a) - i + 1)
                if any(list(a[i : i + k]) == list(b[j : j + k]) for j in range(len(b) - k + 1))
            ),
            default=0,
        )
        assert longest_common_run(a, b) == brute


def test_ngram_overlap_counts_generated_positions():
    reference = [1, 2, 3, 4, 5]
    assert ngram_overlap([1, 2, 3], reference, 3) == 1.0
    assert ngram_overlap([1, 2, 3, 9], reference, 3) == 0.5  # (1,2,3) found, (2,3,9) not
    assert ngram_overlap([2, 3, 4, 2, 3, 4], reference, 3) == pytest.approx(2 / 4)
    assert np.isnan(ngram_overlap([1, 2], reference, 3))


def test_summary_has_a_paired_difference_per_metric():
    per_song = pd.DataFrame(
        [
            dict(song_id=s, mode=m, n_generated=10, longest_run=run, ngram_overlap=ov)
            for s, (r1, r2) in enumerate([(1, 5), (2, 6), (1, 4)])
            for m, run, ov in (("referencing", r1, 0.0), ("continuation", r2, 0.5))
        ]
    )
    table = summarise(per_song, resamples=200, seed=0)
    diff = table[(table["mode"] == "continuation - referencing") & (table["metric"] == "longest_run")].iloc[0]
    assert diff["mean"] == pytest.approx(11 / 3)
    assert diff["ci_low"] > 0 and diff["n_songs"] == 3
    ref = table[(table["mode"] == "referencing") & (table["metric"] == "longest_run")].iloc[0]
    assert ref["mean"] == pytest.approx(4 / 3) and ref["ci_low"] <= ref["mean"] <= ref["ci_high"]
