"""The run plan: what a corpus supplies, which results a config rules out, and stale files moved aside."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from musicot import plan as P
from musicot.config import validate
from tests.conftest import REPO


def _folder(tmp_path, sidecars: dict[str, dict] | None = None, n: int = 3):
    music = tmp_path / "music"
    music.mkdir()
    for i in range(n):
        sf.write(music / f"song{i}.wav", np.zeros((1600, 1), np.float32), 16000)
    for name, meta in (sidecars or {}).items():
        (music / f"{name}.json").write_text(json.dumps(meta))
    return music


def _config(**over) -> dict:
    return validate(over)


def test_builtin_corpus_supplies_everything_and_rules_out_nothing():
    config = _config()
    supplies = P.corpus_supplies(config)
    assert supplies.stems and supplies.songs == config["corpus"]["synth"]["n_songs"]
    plan = P.plan_run(config, supplies)
    # CTC is off in the default config (too slow to learn on the CPU preset): said, not silently skipped
    assert list(plan.absent) == [P.SEMANTIC_CTC] and plan.absent[P.SEMANTIC_CTC].key == "semantic.ctc.enabled"
    assert not plan.blocked
    assert plan.prep_steps() == ["separation", "vad", "lyrics", "structure", "tags"]
    assert plan.prep_steps("rejected") == plan.prep_steps()
    ctc_on = _config(semantic={"ctc": {"enabled": True}})
    assert not P.plan_run(ctc_on, P.corpus_supplies(ctc_on)).absent


def test_ctc_and_stem_probes_need_timed_lyrics_and_stems(tmp_path):
    music = _folder(tmp_path, {"song0": {"caption": "a sad piano ballad"}, "song1": {"genre": "rock", "mood": "dark"}})
    config = _config(corpus={"source": "folder", "ingest": {"path": str(music)}}, semantic={"ctc": {"enabled": True}})
    supplies = P.corpus_supplies(config)
    assert supplies.timed_lyrics == 0
    plan = P.plan_run(config, supplies)
    assert "no timed lyrics" in plan.absent[P.SEMANTIC_CTC].reason
    assert P.SEMANTIC_STEM_PROBE in plan.absent and not plan.blocked


def test_captionless_folder_blocks_clap_naming_the_key(tmp_path):
    music = _folder(tmp_path)
    config = _config(corpus={"source": "folder", "ingest": {"path": str(music)}})
    supplies = P.corpus_supplies(config)
    assert (supplies.songs, supplies.stems, supplies.distinct_captions) == (3, False, 0)
    plan = P.plan_run(config, supplies)
    assert list(plan.blocked) == [P.CLAP] and plan.blocked[P.CLAP].key == "clap.pretrained"
    message = plan.blocking_message()
    assert "clap.pretrained" in message and "3 audio files with 0 distinct caption" in message
    # what the corpus cannot give is absent with its reason, never silently dropped
    assert {P.SEPARATOR, P.SEPARATION, P.SDR, P.VAD, P.ANALYSIS_TRUTH, P.ANALYSIS_SEPARATED} <= set(plan.absent)
    assert plan.prep_steps() == ["lyrics", "structure", "tags"]
    assert "results/tables" in plan.unavailable_outputs()


def test_captions_or_a_checkpoint_unblock_clap(tmp_path):
    music = _folder(tmp_path, {"song0": {"caption": "a sad piano ballad"}, "song1": {"genre": "rock", "mood": "dark"}})
    config = _config(corpus={"source": "folder", "ingest": {"path": str(music)}})
    supplies = P.corpus_supplies(config)
    assert supplies.distinct_captions == 2
    assert not P.plan_run(config, supplies).blocked
    one = P.Supplies("folder", "x", 3, False, 1, 0)
    assert P.CLAP in P.plan_run(config, one).blocked
    checkpoint = tmp_path / "clap.pt"
    checkpoint.write_bytes(b"")
    with_ckpt = _config(corpus=config["corpus"], clap={"pretrained": str(checkpoint)})
    assert not P.plan_run(with_ckpt, one).blocked
    missing = _config(corpus=config["corpus"], clap={"pretrained": str(tmp_path / "nope.pt")})
    blocked = P.plan_run(missing, one).blocked
    assert list(blocked) == [P.CLAP] and blocked[P.CLAP].key == "clap.pretrained"
    assert "nope.pt does not exist" in blocked[P.CLAP].reason


def test_a_separator_checkpoint_brings_separation_but_not_sdr(tmp_path):
    ckpt = tmp_path / "demucs"
    ckpt.mkdir()
    config = _config(
        corpus={"source": "folder", "ingest": {"path": "x"}}, prep={"separation": {"checkpoint": str(ckpt)}}
    )
    plan = P.plan_run(config, P.Supplies("folder", "x", 3, False, 2, 0))
    assert plan.has(P.SEPARATION) and plan.has(P.VAD) and plan.has(P.ANALYSIS_SEPARATED)
    assert not plan.has(P.SDR) and not plan.has(P.ANALYSIS_TRUTH)
    assert plan.prep_steps() == ["vad", "lyrics", "structure", "tags"]
    assert plan.prep_steps("rejected") == ["separation", "vad", "lyrics", "structure", "tags"]


def test_asr_without_separation_is_blocked():
    config = _config(corpus={"source": "folder", "ingest": {"path": "x"}}, prep={"asr": {"checkpoint": "/w"}})
    plan = P.plan_run(config, P.Supplies("folder", "x", 3, False, 2, 0))
    assert plan.blocked[P.LYRICS_ASR].key == "prep.separation.checkpoint"


def test_missing_ingest_path_is_a_plan_error(tmp_path):
    with pytest.raises(P.PlanError, match=r"corpus\.ingest\.path is required"):
        P.corpus_supplies(_config(corpus={"source": "folder"}))
    with pytest.raises(P.PlanError, match="does not exist"):
        P.corpus_supplies(_config(corpus={"source": "folder", "ingest": {"path": str(tmp_path / "no")}}))


def test_quarantine_moves_files_and_folders_aside_replacing_older_copies(tmp_path):
    stems = tmp_path / "results/prep/stems/song"
    stems.mkdir(parents=True)
    (stems / "vocals.flac").write_text("old run")
    (tmp_path / "results/prep/vad.parquet").write_text("old run")
    stale = tmp_path / "results/stale/prep/stems"
    stale.mkdir(parents=True)
    (stale / "older.txt").write_text("older run")
    moved = P.quarantine(["results/prep/stems", "results/prep/vad.parquet", "results/prep/absent.csv"], tmp_path)
    assert moved == ["results/prep/stems", "results/prep/vad.parquet"]
    assert not (tmp_path / "results/prep/stems").exists() and not (tmp_path / "results/prep/vad.parquet").exists()
    assert (stale / "song/vocals.flac").read_text() == "old run" and not (stale / "older.txt").exists()
    assert (tmp_path / "results/stale/prep/vad.parquet").read_text() == "old run"


def test_readme_table_is_the_plans_requirements():
    readme = (REPO / "README.md").read_text()
    for stage, needs, without in P.REQUIREMENTS:
        assert f"| {stage} | {needs} | {without} |" in readme, stage
