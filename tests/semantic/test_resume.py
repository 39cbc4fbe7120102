"""The semantic trainer resumes after a SIGKILL as the other trainers do (tests/test_resume.py's helpers):
killed right after its first SSL checkpoint, rerun, it says where it resumed and ends (SSL, CTC and
k-means) with exactly the weights of an uninterrupted run in another folder.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from musicot.training import STATE_FILE
from tests.semantic.conftest import toy_config_json
from tests.test_resume import (  # noqa: F401 (_no_stray_runs: the autouse fixture that kills leftover runs)
    _assert_same_weights,
    _finish,
    _kill_after_checkpoint,
    _no_stray_runs,
    _resumed,
    _run,
    _start,
)

STEPS = 100  # SSL steps; a checkpoint every 10, so the kill after the first leaves most of the run to come


def test_semantic_trainer_resumes_after_kill(toy_tracks, tmp_path):
    config = toy_config_json(ssl={"steps": STEPS, "checkpoint_every": 10, "eval_every": 10, "log_every": 5})

    def command(folder: Path) -> list[str]:
        args = ["--config", config, "--tracks", str(toy_tracks), "--out", str(folder / "encoder")]
        return ["musicot.semantic.train", *args, "--state", str(folder / "state"), "--threads", "1"]

    full = _start(command(tmp_path / "full"), tmp_path / "full.log")
    state = tmp_path / "killed" / "state" / "ssl" / STATE_FILE
    step = _kill_after_checkpoint(command(tmp_path / "killed"), state, tmp_path / "killed.log", STEPS)
    _resumed(_run(command(tmp_path / "killed"), tmp_path / "rerun.log"), state, step)
    _finish(full, tmp_path / "full.log")
    for name in ("model.safetensors", "kmeans.safetensors", "ctc_head.safetensors"):
        resumed, uninterrupted = (load_file(str(tmp_path / f / "encoder" / name)) for f in ("killed", "full"))
        _assert_same_weights(resumed, uninterrupted)
