"""musicot.launch: the command a training rule's `gpu` and `nodes` resources turn into."""

from __future__ import annotations

import subprocess
import sys

import pytest

from musicot.launch import command


def test_one_process_or_none_runs_the_module_itself():
    for procs in (0, 1):
        assert command("musicot.lm.train", ["--out", "x"], procs) == [
            sys.executable,
            "-m",
            "musicot.lm.train",
            "--out",
            "x",
        ]


def test_several_gpus_of_one_node_start_torchrun_standalone():
    argv = command("musicot.lm.train", ["--out", "x"], 4)
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--nproc_per_node=4" in argv and "--standalone" in argv
    assert argv[-4:] == ["-m", "musicot.lm.train", "--out", "x"]


def test_several_nodes_meet_at_one_rendezvous(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    argv = command("musicot.acoustic.train_dit", [], 8, nodes=2, endpoint="gpu001:29500")
    assert "--standalone" not in argv
    assert {"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=gpu001:29500", "--rdzv-id=4242"} <= set(argv)


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="procs -1"):
        command("m", [], -1)
    with pytest.raises(ValueError, match="nodes 0"):
        command("m", [], 2, nodes=0)


def test_the_launcher_replaces_itself_with_the_module():
    result = subprocess.run(
        [sys.executable, "-m", "musicot.launch", "--procs", "1", "json.tool", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "json.tool" in result.stdout + result.stderr, result.stderr
