"""Resume after a kill, the way a user hits it: each trainer's CLI is SIGKILLed mid-run, the same
command is run again, and it must say where it resumed and end with exactly the weights of an
uninterrupted run of that command in another folder (exact on CPU, one thread).

Each kill lands as soon as a trainer's first checkpoint exists, with several checkpoints of the
run still to come; a run that finishes before the kill fails the test. The uninterrupted run
goes alongside the first, killed one (one thread each on two cores) to keep the wall time down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from musicot.data.merge import merge_parts
from musicot.prep.separate import TRAINED_NAME
from musicot.training import STATE_FILE
from tests.lm.synthetic import lm_config, make_lm_data
from tests.rvq.test_model import hierarchical

SEED = 7
START_TIMEOUT_S = 120  # until the first checkpoint: imports, data loading and model building on a busy box
RUN_TIMEOUT_S = 300
_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stray_runs():
    """A failed test leaves no trainer of its own running (the uninterrupted one runs alongside)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def tracks(mini_corpus, tmp_path_factory) -> Path:
    """tracks.parquet of the rendered mini corpus: one train song and one valid song, with stems and truth."""
    _, part = mini_corpus
    out = tmp_path_factory.mktemp("resume_corpus")
    merge_parts([part], out)
    splits = set(pd.read_parquet(out / "tracks.parquet")["split"])
    assert {"train", "valid"} <= splits, splits
    return out / "tracks.parquet"


def _start(command: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as handle:
        proc = subprocess.Popen([sys.executable, "-m", *command], stdout=handle, stderr=subprocess.STDOUT, env=env)
    _started.append(proc)
    return proc


def _finish(proc: subprocess.Popen, log: Path) -> str:
    """Wait for a run that must succeed; its log."""
    assert proc.wait(timeout=RUN_TIMEOUT_S) == 0, log.read_text()[-4000:]
    return log.read_text()


def _run(command: list[str], log: Path) -> str:
    return _finish(_start(command, log), log)


def _saved_step(state: Path) -> int:
    return torch.load(state, map_location="cpu", weights_only=False)["step"]


def _kill_after_checkpoint(command: list[str], state: Path, log: Path, max_steps: int) -> int:
    """Start `command`, SIGKILL it once `state` exists, and return the step the state holds."""
    proc = _start(command, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not state.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before {state} was written:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no checkpoint {state} after {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run finished before the kill:\n{log.read_text()[-3000:]}"
    step = _saved_step(state)
    assert 0 < step < max_steps, f"killed at step {step} of {max_steps}: not mid-run"
    return step


def _resumed(log: str, state: Path, step: int) -> None:
    assert f"resumed from {state} at step {step}" in log, log[-4000:]
    assert "starting over" not in log, log[-4000:]


def _assert_same_weights(resumed: dict[str, torch.Tensor], uninterrupted: dict[str, torch.Tensor]) -> None:
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        assert torch.equal(resumed[name], value), name


def test_separator_resumes_after_kill(tracks, tmp_path):
    steps = 100  # checkpoints every 50 steps (separate_train.CHECKPOINT_EVERY): the kill lands after 50
    sep = {"sample_rate": 8000, "channels": 8, "depth": 2, "t_layers": 0, "segment_s": 2.0, "steps": steps}
    sep.update(batch_size=2, crop_s=1.0, lr=0.01, eval_every=50)
    config = json.dumps({"seed": SEED, "prep": {"separation": sep}})

    def command(folder: Path) -> list[str]:
        args = ["--config", config, "--tracks", str(tracks), "--out", str(folder / "model")]
        return ["musicot.prep.separate", "train", *args, "--state", str(folder / "state"), "--threads", "1"]

    full = _start(command(tmp_path / "full"), tmp_path / "full.log")
    state = tmp_path / "killed" / "state" / STATE_FILE
    step = _kill_after_checkpoint(command(tmp_path / "killed"), state, tmp_path / "killed.log", steps)
    _resumed(_run(command(tmp_path / "killed"), tmp_path / "rerun.log"), state, step)
    _finish(full, tmp_path / "full.log")

    def weights(folder: Path) -> dict[str, torch.Tensor]:
        return torch.load(folder / "model" / f"{TRAINED_NAME}.th", map_location="cpu", weights_only=False)["state"]

    _assert_same_weights(weights(tmp_path / "killed"), weights(tmp_path / "full"))


def test_clap_resumes_after_kills_in_either_stage(tracks, tmp_path):
    """Killed in the tagging stage, rerun and killed in the contrastive stage, rerun to the end."""
    steps = 12  # per stage; checkpoints every 4
    clap = {"window_s": 2.0, "hop_s": 1.0, "train_hop_s": 2.0, "batch_size": 2, "crop_s": 2.0}
    clap.update(tag_steps=steps, feature_samples=8, contrastive_batch_size=4, max_steps=steps, warmup_steps=1)
    clap.update(eval_every=4, checkpoint_every=4, log_every=2)
    config = json.dumps({"seed": SEED, "clap": clap})

    def command(folder: Path) -> list[str]:
        args = ["--config", config, "--tracks", str(tracks), "--out", str(folder / "model")]
        return ["musicot.clap.train", "train", *args, "--state-dir", str(folder / "state"), "--threads", "1"]

    full = _start(command(tmp_path / "full"), tmp_path / "full.log")
    killed = tmp_path / "killed"
    tags, contrastive = killed / "state" / "tags" / STATE_FILE, killed / "state" / "contrastive" / STATE_FILE
    tag_step = _kill_after_checkpoint(command(killed), tags, tmp_path / "killed_tags.log", steps)
    assert not contrastive.exists()
    clip_step = _kill_after_checkpoint(command(killed), contrastive, tmp_path / "killed_contrastive.log", steps)
    _resumed((tmp_path / "killed_contrastive.log").read_text(), tags, tag_step)
    assert _saved_step(tags) == steps  # the tagging stage ran to its end before the second kill
    log = _run(command(killed), tmp_path / "rerun.log")
    _resumed(log, tags, steps)
    _resumed(log, contrastive, clip_step)
    _finish(full, tmp_path / "full.log")

    def weights(folder: Path) -> dict[str, torch.Tensor]:
        return torch.load(folder / "model" / "model.pt", map_location="cpu", weights_only=True)

    _assert_same_weights(weights(killed), weights(tmp_path / "full"))


def test_rvq_resumes_after_kill(tmp_path):
    steps = 1000  # checkpoints every eval_every = 25 steps
    x = hierarchical(400, seed=8, noise=0.2)
    songs = np.repeat(np.arange(40), 10)
    table = pd.DataFrame(
        {
            "song_id": [f"s{s:02d}" for s in songs],
            "window": np.tile(np.arange(10), 40),
            "split": np.where(songs < 32, "train", "valid"),
        }
    )
    np.save(tmp_path / "windows.npy", x)
    table.to_parquet(tmp_path / "windows.parquet")
    rvq = {"levels": 3, "codebook_size": 8, "kmeans_iters": 5, "steps": steps, "batch_size": 64, "eval_every": 25}
    config = json.dumps({"seed": SEED, "rvq": rvq})

    def command(folder: Path) -> list[str]:
        args = ["--config", config, "--embeddings", str(tmp_path / "windows.npy")]
        args += ["--windows", str(tmp_path / "windows.parquet"), "--out", str(folder)]
        return ["musicot.rvq.train", *args, "--state", str(folder / "state"), "--threads", "1"]

    full = _start(command(tmp_path / "full"), tmp_path / "full.log")
    state = tmp_path / "killed" / "state" / STATE_FILE
    step = _kill_after_checkpoint(command(tmp_path / "killed"), state, tmp_path / "killed.log", steps)
    _resumed(_run(command(tmp_path / "killed"), tmp_path / "rerun.log"), state, step)
    _finish(full, tmp_path / "full.log")
    resumed, uninterrupted = (load_file(str(tmp_path / f / "model.safetensors")) for f in ("killed", "full"))
    _assert_same_weights(resumed, uninterrupted)


def test_lm_resumes_after_kill_with_the_same_step_and_loss(tmp_path):
    """Both the weights and the logged losses of the resumed run equal the uninterrupted run's."""
    steps = 40  # checkpoints every 10
    paths = make_lm_data(tmp_path / "data")
    config = json.dumps(lm_config(seed=SEED, steps=steps))

    def command(folder: Path) -> list[str]:
        args = ["--config", config, "--system", "musicot", "--data", str(paths["data"])]
        args += ["--embeddings", str(paths["embeddings"]), "--tokenizer", str(paths["tokenizer"])]
        return ["musicot.lm.train", *args, "--out", str(folder / "model"), "--state", str(folder / "state")]

    full = _start(command(tmp_path / "full"), tmp_path / "full.log")
    state = tmp_path / "killed" / "state" / STATE_FILE
    step = _kill_after_checkpoint(command(tmp_path / "killed"), state, tmp_path / "killed.log", steps)
    _resumed(_run(command(tmp_path / "killed"), tmp_path / "rerun.log"), state, step)
    _finish(full, tmp_path / "full.log")
    resumed, uninterrupted = (load_file(str(tmp_path / f / "model" / "model.safetensors")) for f in ("killed", "full"))
    _assert_same_weights(resumed, uninterrupted)
    history = [json.loads((tmp_path / f / "model" / "metrics.json").read_text())["history"] for f in ("killed", "full")]
    assert history[0]["train"] == history[1]["train"] and history[0]["eval"] == history[1]["eval"]
    assert history[0]["train"][-1][0] == steps
