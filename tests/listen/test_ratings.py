"""MOS from ratings files: means and t intervals by hand, and one clear rejection per kind of bad file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from musicot.listen.ratings import FORMAT, VERSION, Key, RatingsError, aggregate, collect, read_ratings

DIMS = ("fidelity", "musicality", "creativity")
SAMPLES = pd.DataFrame(
    {
        "sample": ["s1", "s2", "s3", "s4"],
        "system": ["base", "musicot", "base", "musicot"],
        "prompt_id": ["p1", "p1", "p2", "p2"],
        "audio_sha1": ["a", "b", "c", "d"],
    }
)
KEY = Key("kit1", DIMS, SAMPLES)


def ratings_file(tmp_path, name, values, **changes):
    data = {
        "format": FORMAT,
        "version": VERSION,
        "kit": "kit1",
        "rater": name,
        "ratings": [dict(sample=s, **dict(zip(DIMS, v, strict=True))) for s, v in values.items()],
    }
    data.update(changes)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


GOOD = {"s1": (2, 3, 4), "s2": (4, 4, 5), "s3": (1, 2, 3), "s4": (5, 5, 5)}


def test_mos_and_t_interval_match_a_hand_computation(tmp_path):
    other = {"s1": (3, 3, 3), "s2": (5, 4, 3), "s3": (2, 2, 2), "s4": (4, 4, 4)}
    ratings, rejected = collect([ratings_file(tmp_path, "ann", GOOD), ratings_file(tmp_path, "bob", other)], KEY)
    assert rejected.empty
    table = aggregate(ratings, DIMS).set_index(["system", "dimension"])
    base_fid = np.array([2, 1, 3, 2], float)  # s1, s3 of ann then bob
    half = 3.182446305284263 * base_fid.std(ddof=1) / 2  # t(0.975, 3) * s / sqrt(4)
    row = table.loc[("base", "fidelity")]
    assert row["mos"] == pytest.approx(2.0) and row["ci_low"] == pytest.approx(2.0 - half)
    assert row["ci_high"] == pytest.approx(2.0 + half) and row["n_raters"] == 2 and row["n_ratings"] == 4
    overall = np.array([np.mean(v) for v in [(4, 4, 5), (5, 5, 5), (5, 4, 3), (4, 4, 4)]])
    assert table.loc[("musicot", "overall"), "mos"] == pytest.approx(overall.mean())


@pytest.mark.parametrize(
    ("values", "changes", "problem"),
    [
        ({k: v for k, v in GOOD.items() if k != "s4"}, {}, "partial, rates 3 of 4"),
        ({**GOOD, "s4": (5, 6, 5)}, {}, "musicality is 6, outside 1-5"),
        ({**GOOD, "s9": (1, 1, 1)}, {}, "'s9', which is not in kit kit1"),
        (GOOD, {"kit": "old"}, "rates kit 'old'"),
        (GOOD, {"format": "x"}, "not a musicot MOS ratings file"),
        (GOOD, {"rater": " "}, "no rater name"),
    ],
)
def test_bad_files_are_rejected_naming_file_and_problem(tmp_path, values, changes, problem):
    path = ratings_file(tmp_path, "ann", values, **changes)
    with pytest.raises(RatingsError, match=r"ann\.json") as error:
        read_ratings(path, KEY)
    assert problem in str(error.value)
    ratings, rejected = collect([path, ratings_file(tmp_path, "bob", GOOD)], KEY)
    assert list(rejected["file"]) == [str(path)] and set(ratings["rater"]) == {"bob"}


def test_not_json_is_rejected(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(RatingsError, match=r"broken.json: not JSON"):
        read_ratings(path, KEY)


def test_no_files_gives_an_empty_table():
    ratings, rejected = collect([], KEY)
    assert aggregate(ratings, DIMS).empty and rejected.empty
