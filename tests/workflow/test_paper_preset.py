"""The paper preset's whole DAG through the SLURM profile, dry-run on this machine with placeholder data
and checkpoint paths: it validates, plans and lists every job with its GPUs, memory and time limit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import REPO

PRESET = REPO / "workflow" / "presets" / "paper.yaml"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
TRAINING = ("train_clap", "train_semantic", "train_lm", "train_vae", "train_dit")


def placeholders(root: Path) -> Path:
    """The preset with /data/ moved under `root`, and an empty stand-in for every file it names."""
    text = PRESET.read_text().replace("/data/", f"{root}/data/")
    for path in sorted(set(re.findall(rf"{re.escape(str(root))}/data/\S+", text))):
        p = Path(path)
        if p.suffix in (".pt", ".th"):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
        elif p.suffix != ".parquet":
            p.mkdir(parents=True, exist_ok=True)
    manifest = root / "data/disco10m/manifest.parquet"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    # the DAG is planned from the manifest's columns, never its audio: two songs to train on, one to
    # validate on, and one MUSDB18-HQ mixture as the FAD reference
    splits = ("train", "train", "valid", "reference")
    rows = [
        dict(path=f"{root}/audio/{i}.flac", caption="an upbeat pop song with drums", lyrics="[verse]\nla la", split=s)
        for i, s in enumerate(splits)
    ]
    pd.DataFrame(rows).to_parquet(manifest)
    preset = root / "paper.yaml"
    preset.write_text(text)
    return preset


def job_table(dry_run: str) -> pd.DataFrame:
    """rule, threads, gpu, mem_mb and runtime of every job a dry run lists."""
    jobs = []
    for block in dry_run.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0].strip()
        threads = re.search(r"^\s+threads: (\d+)", block, re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        res = dict(kv.split("=", 1) for kv in resources[1].split(", ")) if resources else {}
        jobs.append(
            dict(
                rule=rule,
                threads=int(threads[1]) if threads else 1,
                gpu=int(res.get("gpu", 0)),
                mem_mb=int(res.get("mem_mb", 0)),
                runtime=int(res.get("runtime", 0)),
            )
        )
    return pd.DataFrame(jobs)


def test_the_paper_dag_dry_runs_through_the_slurm_profile(tmp_path):
    preset = placeholders(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "workflow/Snakefile"), "-d", str(tmp_path / "run")]
    cmd += ["-n", "--profile", str(PROFILE), "--configfile", str(preset)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    jobs = job_table(result.stdout)
    table = jobs.groupby("rule").agg(
        jobs=("rule", "size"),
        threads=("threads", "max"),
        gpu=("gpu", "max"),
        mem_mb=("mem_mb", "max"),
        runtime_min=("runtime", "max"),
    )
    print(table.sort_values(["gpu", "mem_mb"], ascending=False).to_markdown())
    # the whole paper DAG: corpus by ingest, public separator/ASR, every trainer, generation, evaluation
    assert {"ingest_corpus", "separate", "lyrics", "generate", "evaluate", "tables", *TRAINING} <= set(table.index)
    assert "train_separator" not in table.index  # the preset loads htdemucs_6s: nothing to train
    assert (table.mem_mb > 0).all() and (table.runtime_min > 0).all()
    for rule in TRAINING:
        assert table.loc[rule, "gpu"] >= 2, rule  # several GPUs: torchrun processes
        assert f"--procs {table.loc[rule, 'gpu']}" in result.stdout
    assert result.stdout.count("rule generate:") == 5  # Table 1's systems
