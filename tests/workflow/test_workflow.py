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
}


def test_dry_run_lists_the_corpus_rules(tmp_path):
    result = snakemake(tmp_path, "-n", "--cores", "1", "results/tables")
    assert result.returncode == 0, result.stderr
    for rule in ("synth_shard", "corpus_table", "train_separator", "separate", "vad", "lyrics", "structure", "tags"):
        assert rule in result.stdout, rule


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
    result = snakemake(tmp_path, "--cores", "2", "results/tables", config=TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    tracks = pd.read_parquet(tmp_path / "results/corpus/tracks.parquet")
    assert list(tracks.song_id) == ["synth00000", "synth00001", "synth00002"]
    table = pd.read_csv(tmp_path / "results/tables/corpus.csv")
    assert table.loc[table.split == "all", "songs"].item() == 3
    for name in ("corpus", "prep_quality"):
        for ext in ("csv", "md", "tex"):
            assert (tmp_path / f"results/tables/{name}.{ext}").stat().st_size > 0
    quality = pd.read_csv(tmp_path / "results/prep/quality.csv")
    assert set(quality.step) == {"separation", "vad", "lyrics", "structure", "tags"}
    assert (tmp_path / "results/prep/stems/synth00000/vocals.flac").exists()
    assert (tmp_path / "benchmarks/corpus/synth_shard0.tsv").exists()


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
