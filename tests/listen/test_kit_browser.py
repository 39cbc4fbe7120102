"""The MOS kit in headless Chromium: it loads from file://, every song plays, and rating it in the
browser downloads a file that the aggregation (the `mos` rule's command) turns into MOS per system."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.config import validate
from musicot.generate.conditions import CONDITIONS_FILE
from musicot.listen import kit
from musicot.report.table1 import mos_table
from tests.listen.browser import audio_states, chromium_page, kit_samples, open_file, rate_kit, wait_until_stored

SYSTEMS = ("base", "musicot", "musicot_no_dual")
PROMPTS = ("p001", "p002")
SR = 16000


def make_systems(root):
    """Three systems' folders as musicot.generate writes them, each song a different tone."""
    folders = []
    for s, system in enumerate(SYSTEMS):
        folder = root / system
        folder.mkdir(parents=True)
        (folder / "generation.json").write_text(json.dumps({"system": system}))
        pd.DataFrame(columns=["prompt_id", "frame", "level", "code"]).to_parquet(folder / "thoughts.parquet")
        for p, prompt_id in enumerate(PROMPTS):
            t = np.arange(SR * 2) / SR
            sf.write(folder / f"{prompt_id}.flac", 0.2 * np.sin(2 * np.pi * (220 + 55 * s + 11 * p) * t), SR)
        folders.append(folder)
    conditions = root / "conditions"
    conditions.mkdir()
    rows = [dict(prompt_id=p, prompt=f"a song {p} </script>", lyrics="[VERSE]\nla la") for p in PROMPTS]
    pd.DataFrame(rows).to_parquet(conditions / CONDITIONS_FILE)
    return conditions, folders


@pytest.fixture(scope="module")
def built_kit(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    conditions, folders = make_systems(root)
    config = validate({"seed": 3})
    kit.run(config, conditions, folders, root / "mos", root / "mos_key.json")
    key = json.loads((root / "mos_key.json").read_text())
    return root, {row["sample"]: row["system"] for row in key["samples"]}


# each system's true quality, so the MOS the browser's file yields can be checked against it
QUALITY = {"base": 2, "musicot": 4, "musicot_no_dual": 3}


def test_kit_plays_rates_and_downloads_a_file_the_mos_rule_reads(built_kit, tmp_path):
    root, system_of = built_kit
    with chromium_page() as page:
        open_file(page, root / "mos/index.html")
        states = audio_states(page)
        assert len(states) == len(SYSTEMS) * len(PROMPTS)
        for state in states:
            assert state["error"] is None and state["ready"] >= 1, state
            assert state["can_play"] in ("maybe", "probably") and state["duration"] == pytest.approx(2.0, abs=0.05)
        assert sorted(kit_samples(page)) == sorted(system_of)
        # the page shows no system name: only the letters and the prompt
        text = page.inner_text("body")
        assert not any(system in text.replace("musicot listening", "") for system in SYSTEMS)
        assert page.is_disabled("#submit")
        path = rate_kit(page, lambda sample, dim: QUALITY[system_of[sample]], "ann", tmp_path)
        assert page.js_errors == []
    assert path.name.startswith("mos_ann_")
    out = tmp_path / "metrics/mos.csv"
    cmd = [sys.executable, "-m", "musicot.listen.ratings", "--key", str(root / "mos_key.json")]
    cmd += ["--ratings", str(path), "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    mos = pd.read_csv(out)
    assert pd.read_csv(out.with_name("mos_rejected.tsv"), sep="\t").empty
    overall = mos[mos.dimension == "overall"].set_index("system")
    for system, quality in QUALITY.items():
        assert overall.loc[system, "mos"] == pytest.approx(quality)
        assert overall.loc[system, "n_ratings"] == len(PROMPTS) and overall.loc[system, "n_raters"] == 1
    table = mos_table(mos, {})
    assert set(table["system"]) >= set(SYSTEMS)


def test_progress_survives_a_reload_and_the_button_waits_for_every_song(built_kit):
    root, _ = built_kit
    with chromium_page() as page:
        open_file(page, root / "mos/index.html")
        first = kit_samples(page)[0]
        page.fill("#rater", "bob")
        for dim in ("fidelity", "musicality", "creativity"):
            page.check(f'input[name="{first}:{dim}"][value="5"]')
        assert page.inner_text("#progress").startswith("1 of 6") and page.is_disabled("#submit")
        order = kit_samples(page)
        # Chromium hands localStorage writes to its browser process asynchronously; a reload in a new
        # renderer can read before they arrive (1 in ~12 under load). Reload once another page of the
        # same browser sees the rating.
        stored = json.dumps({first: {"fidelity": 5, "musicality": 5, "creativity": 5}}, separators=(",", ":"))[1:-1]
        wait_until_stored(page.context, root / "probe.html", stored)
        page.reload()
        assert kit_samples(page) == order  # the rater's drawn order is kept with their ratings
        assert page.is_checked(f'input[name="{first}:fidelity"][value="5"]')
        assert page.input_value("#rater") == "bob" and page.is_disabled("#submit")
        assert page.js_errors == []
