"""Table 1, the orderings and the generated-song tables from metrics files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from musicot.report.table1 import NO_RATINGS, PAPER, QUOTED, THIS_RUN, analyzability_table, orderings_table, table1

PAPER_ROWS = {
    "own": [
        {
            "system": "musicot",
            "row": "+ MusiCoT",
            "RTF": 0.27,
            "MOS": 3.72,
            "FAD": 0.102,
            "CE": 7.49,
            "CU": 7.87,
            "PC": 6.21,
            "PQ": 8.11,
        }
    ],
    "external": [
        {"row": "Suno V4", "RTF": None, "MOS": None, "FAD": None, "CE": None, "CU": None, "PC": None, "PQ": None}
    ],
}


def metrics(system: str, aesthetics: dict) -> dict:
    fad = dict(value=0.5, ci_low=0.4, ci_high=0.6, fad_inf=0.45, n_songs=100, n_windows=100)
    floor = dict(
        value=0.1, ci_low=0.05, ci_high=0.2, fad_inf=0.08, n_songs=6, n_windows=30, songs="valid split (real audio)"
    )
    rtf = dict(total=0.9, lm=0.2, dit=0.5, decoder=0.2, hardware="cpu; test")
    return dict(system=system, n_songs=100, duration_s=8.0, fad=fad, fad_floor=floor, aesthetics=aesthetics, rtf=rtf)


def test_table1_rows_sources_and_placeholders():
    na = {"status": "n/a (no checkpoint)", "CE": None, "CU": None, "PC": None, "PQ": None}
    table = table1([metrics("musicot", na)], PAPER_ROWS)
    assert list(table["source"]) == [THIS_RUN, "this run (real audio)", PAPER, QUOTED]
    ours = table.iloc[0]
    assert ours["MOS"] == NO_RATINGS and ours["CE"] == "n/a (no checkpoint)"
    assert ours["FAD"] == 0.5 and ours["FAD CI"] == "[0.400, 0.600]" and ours["RTF"] == 0.9
    assert table.iloc[2]["FAD"] == 0.102 and "musicot" in table.iloc[2]["note"]
    assert "not transcribed" in table.iloc[3]["note"]


def test_table1_scores_and_mos_when_present():
    scored = {"status": "scored", "CE": 7.1, "CU": 7.5, "PC": 5.9, "PQ": 7.8}
    mos = pd.DataFrame([dict(system="musicot", mos=3.5, ci_low=3.2, ci_high=3.8)])
    ours = table1([metrics("musicot", scored)], {}, mos).iloc[0]
    assert ours["CE"] == 7.1 and ours["MOS"] == "3.50 [3.20, 3.80]"


def test_orderings_and_analyzability_tables():
    comparisons = pd.DataFrame(
        [
            dict(
                metric="FAD",
                system="base",
                versus="musicot",
                paper_delta=0.01,
                delta=0.02,
                ci_low=0.01,
                ci_high=0.03,
                n_songs=100,
                verdict="holds",
            )
        ]
    )
    row = orderings_table(comparisons).iloc[0]
    assert row["claim"] == "musicot better than base on FAD (lower)" and row["paper"] == "+0.010"
    generated = pd.DataFrame(
        [
            dict(
                anchor="vocals",
                stems="separated",
                r_pooled=0.41,
                r_per_song_mean=np.nan,
                n_windows=100,
                n_songs=100,
                n_excluded=0,
                few_songs=False,
            ),
            dict(
                anchor="guitar",
                stems="separated",
                r_pooled=0.2,
                r_per_song_mean=np.nan,
                n_windows=8,
                n_songs=8,
                n_excluded=92,
                few_songs=True,
            ),
        ]
    )
    heldout = pd.DataFrame(
        [dict(anchor="vocals", stems="truth", embedding="quantized", r_pooled=0.5, n_songs=12, n_windows=70)]
    )
    table = analyzability_table(generated, heldout, {"vocals": 0.689, "guitar": 0.628}, min_songs=10).set_index(
        "anchor"
    )
    assert table.loc["vocals", "held-out truth r"] == 0.5 and table.loc["vocals", "paper r"] == 0.689
    assert table.loc["vocals", "held-out songs / windows"] == "12 / 70"
    assert "fewer than 10 songs" in table.loc["guitar", "generated songs / windows"]
    assert np.isnan(table.loc["guitar", "held-out truth r"])
    assert table.loc["guitar", "generated r"] == pytest.approx(0.2)
