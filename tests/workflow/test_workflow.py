"""The DAG itself: dry run, lint, config errors before any job, tiny end-to-end runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from tests.conftest import REPO

SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake(workdir: Path, *args: str, config: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake on the repo's Snakefile in `workdir` with the venv's tools first on PATH."""
    shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    extra = []
    if config is not None:
        (workdir / "override.yaml").write_text(yaml.safe_dump(config))
        extra = ["--configfile", str(workdir / "config.yaml"), str(workdir / "override.yaml")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *extra, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


# Every stage at micro scale: the integration run that chains the whole DAG on CPU.
TINY = {
    "corpus": {
        "sample_rate": 16000,
        "split_fractions": {"valid": 0.34, "reference": 0.0},
        "synth": {"n_songs": 3, "shards": 2, "duration_s": [8, 10]},
    },
    "prep": {"separation": {"steps": 3, "eval_every": 2, "batch_size": 2, "crop_s": 1.0, "segment_s": 2.0}},
    # 2 s windows at a 1 s hop give each 8-10 s song several windows to correlate over
    "clap": {
        "window_s": 2.0,
        "hop_s": 1.0,
        "train_hop_s": 2.0,
        "batch_size": 2,
        "crop_s": 2.0,
        "tag_steps": 2,
        "feature_samples": 8,
        "contrastive_batch_size": 4,
        "max_steps": 2,
        "warmup_steps": 1,
        "eval_every": 2,
        "checkpoint_every": 2,
        "log_every": 1,
    },
    "rvq": {"levels": 2, "codebook_size": 4, "kmeans_iters": 2, "steps": 2, "batch_size": 8, "eval_every": 1},
}
THOUGHT_RULES = ("train_clap", "embed_clap", "train_rvq", "thought_analyzability")


def test_dry_run_lists_the_corpus_rules(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/tables")
    assert result.returncode == 0, result.stderr
    for rule in ("synth_shard", "corpus_table", "train_separator", "separate", "vad", "lyrics", "structure", "tags"):
        assert rule in result.stdout, rule
    for rule in THOUGHT_RULES:
        assert f"rule {rule}:" in result.stdout, rule


def test_dry_run_resolves_the_analyzability_and_its_figure(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/analysis/thought_analyzability.csv")
    assert result.returncode == 0, result.stderr
    for rule in (*THOUGHT_RULES, "separate"):
        assert f"rule {rule}:" in result.stdout, rule
    assert "rule thought_timeline:" not in result.stdout and "rule tables:" not in result.stdout
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/figures/thought_timeline.png")
    assert result.returncode == 0, result.stderr
    assert "rule thought_timeline:" in result.stdout and "rule tables:" not in result.stdout


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_bad_config_fails_before_any_job_naming_the_key(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", config={"corpus": {"synth": {"n_songs": "many"}}})
    assert result.returncode != 0
    assert "corpus.synth.n_songs: 'many' is not of type 'integer'" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_ingest_source_without_path_is_a_clear_error(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", config={"corpus": {"source": "folder"}})
    assert result.returncode != 0
    assert "corpus.ingest.path is required" in result.stdout + result.stderr


def test_tiny_synth_run_end_to_end(tmp_path):
    result = snakemake(tmp_path, "--cores", "2", "results/tables", "results/figures/thought_timeline.pdf", config=TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    assert list(tracks.song_id) == ["synth00000", "synth00001", "synth00002"]
    table = pd.read_csv(tmp_path / "results/tables/corpus.csv")
    assert table.loc[table.split == "all", "songs"].item() == 3
    for name in ("corpus", "prep_quality", "thought"):
        for ext in ("csv", "md", "tex"):
            assert (tmp_path / f"results/tables/{name}.{ext}").stat().st_size > 0
    quality = pd.read_csv(tmp_path / "results/prep/quality.csv")
    assert set(quality.step) == {"separation", "vad", "lyrics", "structure", "tags"}
    assert (tmp_path / "results/prep/stems/synth00000/vocals.flac").exists()
    assert (tmp_path / "benchmarks/corpus/synth_shard0.tsv").exists()
    # the thought: CLAP windows -> RVQ codes -> analyzability of the one held-out (valid) song
    windows = pd.read_parquet(tmp_path / "results/clap/embeddings/windows.parquet")
    assert len(np.load(tmp_path / "results/clap/embeddings/windows.npy")) == len(windows)
    codes = pd.read_parquet(tmp_path / "results/rvq/codes.parquet")
    assert len(codes) == 2 * len(windows) and codes["code"].between(0, 3).all()
    rows = pd.read_csv(tmp_path / "results/analysis/thought_analyzability.csv")
    assert set(zip(rows.embedding, rows.stems, strict=True)) == {
        ("quantized", "truth"),
        ("quantized", "separated"),
        ("raw", "truth"),
    }
    assert len(rows) == 3 * 5 and rows["paper_r"].notna().all()
    held_out = windows[windows["split"] != "train"]
    per_window = pd.read_parquet(tmp_path / "results/analysis/thought_windows.parquet")
    assert len(per_window) == len(held_out) > 1
    assert per_window["sim_vocals"].between(-1, 1).all() and per_window["volume_truth_drums"].notna().all()
    for ext in ("pdf", "png"):
        assert (tmp_path / f"results/figures/thought_timeline.{ext}").stat().st_size > 0
    thought = pd.read_csv(tmp_path / "results/tables/thought.csv")
    assert {"CLAP", "RVQ (valid split)", "analyzability r"} <= set(thought["part"])
    for rule in (*THOUGHT_RULES, "thought_timeline"):
        stage = "analysis" if rule.startswith("thought") else rule.split("_")[1]
        assert (tmp_path / f"benchmarks/{stage}/{rule}.tsv").exists(), rule


def test_ingest_run_records_broken_files(tmp_path):
    src = tmp_path / "music"
    src.mkdir()
    t = np.arange(16000 * 6) / 16000
    sf.write(src / "good.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    (src / "empty.wav").write_bytes(b"")
    (src / "notes.txt").write_text("not audio, not a sidecar")
    config = {"corpus": {"source": "folder", "sample_rate": 16000, "ingest": {"path": str(src)}}}
    result = snakemake(tmp_path, "--cores", "2", "results/corpus/summary.csv", config=config)
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    rejected = pd.read_csv(tmp_path / "results/corpus/rejected.tsv", sep="\t")
    assert len(tracks) == 1
    assert sorted(rejected.reason) == ["empty_file", "not_audio"]
