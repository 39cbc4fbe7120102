"""The one plain training loop every trainer of the project shares (separator, CLAP, RVQ, LM, VAE, DiT).

nanoGPT-style and explicit, top to bottom: seed, resume if a checkpoint exists, step until
`max_steps`, evaluate and checkpoint on fixed intervals, return the history. What differs
between trainers (the model, how a batch is drawn, the loss, the evaluation) comes in as
arguments, so each trainer stays a short file and the loop is tested once.

Resume is exact on CPU: the checkpoint holds the model, optimizer, scheduler, step, history
and every RNG state, so an interrupted run continued from ``state.pt`` ends with the same
weights as one uninterrupted run. Checkpoints are written to a temporary file and renamed
into place, so a kill never leaves half a checkpoint.

A run whose data teaches nothing is refused early: if over the first steps of a fresh run
(see `train_loop`) no trained parameter ever gets a non-zero gradient, `NoLearningSignal` is
raised before any checkpoint or model is written, instead of saving weights that only look
trained.

Under torchrun (WORLD_SIZE > 1, see `musicot.distributed`) the loop is data-parallel: every
process draws the step's global batch and trains on its slice, gradients are averaged before each
optimizer step, rank 0's weights are broadcast at the start, and rank 0 alone writes checkpoints
(holding every rank's RNG state, so a resume is exact per process) and logs. Losses are logged as
the mean over processes. When the loop ends, the other ranks leave the process group and exit, so
whatever a trainer does after `train_loop` (saving the model, final metrics) happens once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from musicot import distributed

log = logging.getLogger("musicot.training")

STATE_FILE = "state.pt"
RUN_FILE = "run.json"  # beside state.pt: what the saved state was trained with


class NoLearningSignal(RuntimeError):
    """Every gradient stayed zero (or absent) over the first steps: the data gives nothing to learn."""


@dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to evaluate, checkpoint and log (all in optimizer steps)."""

    max_steps: int
    eval_every: int
    checkpoint_every: int
    log_every: int
    seed: int
    grad_accum: int = 1  # micro-batches per optimizer step: next_batch(step) then returns a list of them
    clip_norm: float = 0.0  # clip the gradient norm to this before each step (0: no clipping)
    autocast: str = ""  # "bf16": forward passes under bf16 autocast (CUDA only; ignored on CPU)


def step_rng(seed: int, stream: int, step: int) -> np.random.Generator:
    """The generator of draw `step` of `stream`: batches as pure functions of (seed, stream, step), so a
    resumed run draws what an uninterrupted one would."""
    return np.random.default_rng([seed, stream, step])


def cosine_schedule(optimizer: torch.optim.Optimizer, warmup: int, steps: int, floor: float = 0.0):
    """LambdaLR: linear warm-up over `warmup` steps, then cosine decay to `floor` x the peak at `steps`."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and, when present, CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_state(
    path: Path, model, optimizer, scheduler, step: int, history: dict, pending=(0.0, 0), rng: list | None = None
) -> None:
    """Write the full training state atomically (temp file, then os.replace).

    `pending` is the (loss sum, count) of the log interval in progress, so a resumed run
    logs the same interval means as an uninterrupted one. `rng`: every process' RNG states in
    rank order (a data-parallel run); this process' own when None.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": step,
        "history": history,
        "pending": (float(pending[0]), pending[1]),
        "rng": rng if rng is not None else _rng_states(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path, model, optimizer, scheduler) -> tuple[int, dict, tuple[float, int]]:
    """Restore what `save_state` wrote into the given objects; returns (step, history, pending)."""
    # Our own file, holding NumPy/Python RNG state: needs full unpickling.
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    if isinstance(rng, list):  # a data-parallel run's: this rank's own, when it ran with as many processes
        w = distributed.world()
        rng = rng[w.rank] if len(rng) == w.size else rng[0]
    _set_rng_states(rng)
    return state["step"], state["history"], state["pending"]


def train_loop(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    next_batch: Callable[[int], Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    cfg: LoopConfig,
    state_dir: Path,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    scheduler: Any = None,
) -> dict:
    """Train `model` until cfg.max_steps and return the history.

    `next_batch(step)` gives the batch of step `step` (0-based); `loss_fn(model, batch)` its
    scalar loss. `evaluate(model)` runs before the first step, every cfg.eval_every steps and
    after the last one, under no_grad in eval mode. History: {"train": [(step, mean loss over
    the last log interval)], "eval": [(step, metrics)], "seed": ..., "wall_s": ...}; steps
    count completed optimizer steps.

    A fresh run is probed for a learning signal over its first min(log_every,
    checkpoint_every, max_steps) steps: the first log interval, cut short so that the verdict
    comes before the first checkpoint. If in every one of them each parameter the optimizer
    owns has a gradient that is None or exactly zero, `NoLearningSignal` is raised, naming
    `state_dir`, and nothing is written. One step with any non-zero gradient passes. An
    optimizer without parameters (the RVQ's EMA codebooks learn outside it) is not probed,
    nor is a resumed run (its checkpoint was only written after the probe passed).
    """
    w = distributed.init()
    rank, master = w.rank, w.master
    state_path = Path(state_dir) / STATE_FILE
    trained = [p for group in optimizer.param_groups for p in group["params"]]
    if w.size > 1 and not trained:
        raise ValueError(
            f"{state_dir}: this trainer's optimizer owns no parameters (it learns in buffers, as the RVQ's EMA "
            f"codebooks do), so its {w.size} processes could not stay in step: run it as one process"
        )
    # Each rank draws different random numbers (nanoGPT's seed offset); rank 0 uses the seed itself.
    seed_everything(cfg.seed + rank)
    step, history = 0, {"train": [], "eval": [], "seed": cfg.seed, "wall_s": 0.0}
    # Loss summed on-device and read once per log interval, so a GPU is not synchronised every step.
    loss_sum, n_sum = 0.0, 0
    if state_path.exists():
        step, history, (loss_sum, n_sum) = load_state(state_path, model, optimizer, scheduler)
        if master:
            log.info("resumed from %s at step %d", state_path, step)
    distributed.broadcast_module(model)  # one starting point for every process (each seeded its own init)

    def run_eval() -> None:
        if evaluate is None or (history["eval"] and history["eval"][-1][0] == step):
            return
        model.eval()
        with torch.no_grad():
            metrics = evaluate(model)
        model.train()
        history["eval"].append((step, metrics))
        if master:
            log.info("step %d eval %s", step, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))

    def checkpoint() -> None:
        # collective: every rank gives its RNG state and its share of the pending loss
        rng = distributed.gather_objects(_rng_states(), w.size) if w.size > 1 else None
        pending = (distributed.mean_over_processes(loss_sum, w.size), n_sum)
        if master:
            save_state(state_path, model, optimizer, scheduler, step, history, pending, rng)

    # Probed over the first steps of a fresh run only (see above), so the check costs nothing later on.
    probe_until = min(cfg.log_every, cfg.checkpoint_every, cfg.max_steps) if step == 0 and trained else 0
    signal = False

    t0, wall0 = time.perf_counter(), history["wall_s"]
    model.train()
    if step == 0:
        run_eval()
    # A bar only on a terminal: in rule logs the periodic log lines say the same without redraw noise.
    bar = tqdm(
        total=cfg.max_steps, initial=step, disable=not master or not sys.stderr.isatty(), desc="train", leave=False
    )
    while step < cfg.max_steps:
        optimizer.zero_grad(set_to_none=True)
        loss = _accumulate(model, loss_fn, next_batch(step), cfg, w)
        distributed.average_grads(trained, w.size)
        if cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(trained, cfg.clip_norm)
        if step < probe_until and not signal:
            signal = any(p.grad is not None and bool(p.grad.ne(0).any()) for p in trained)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        step += 1
        loss_sum, n_sum = loss_sum + loss.detach(), n_sum + 1
        bar.update(1)
        if step == probe_until:
            signal = distributed.any_over_processes(signal, w.size)
        if step == probe_until and not signal:
            bar.close()
            raise NoLearningSignal(
                f"{state_dir}: no learning signal: in each of the first {step} steps every gradient of the "
                f"{len(trained)} trained parameter tensors was zero or missing (mean loss "
                f"{float(loss_sum) / n_sum:.6g}), so the data gives the model nothing to learn from. "
                "Check the training data (are there labels, are the texts or inputs all alike?); "
                "no checkpoint or model was written"
            )
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            mean = distributed.mean_over_processes(loss_sum, w.size) / n_sum
            history["train"].append((step, mean))
            loss_sum, n_sum = 0.0, 0
            bar.set_postfix(loss=f"{mean:.4g}")
            if master:
                log.info("step %d/%d loss %.5g", step, cfg.max_steps, mean)
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            run_eval()
        history["wall_s"] = wall0 + time.perf_counter() - t0
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            checkpoint()
    bar.close()
    history["wall_s"] = wall0 + time.perf_counter() - t0
    if w.size > 1:
        distributed.finish()
        if not master:  # rank 0 alone goes on to save the model and write metrics
            raise SystemExit(0)
    return history


def _accumulate(
    model: torch.nn.Module, loss_fn: Callable, batch: Any, cfg: LoopConfig, w: distributed.World | None = None
) -> torch.Tensor:
    """Backward of one optimizer step's micro-batches (one unless cfg.grad_accum > 1), each cut to this
    process' slice; returns their mean loss."""
    micro = batch if cfg.grad_accum > 1 else [batch]
    if len(micro) != cfg.grad_accum:
        raise ValueError(f"next_batch gave {len(micro)} micro-batches for grad_accum {cfg.grad_accum}")
    # The RVQ learns in EMA buffers and owns no parameter: its tensors still say where it runs.
    device = next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))
    # batches are drawn on the CPU (NumPy, per-step RNG); each process moves only its own slice
    micro = [distributed.to_device(distributed.shard(part, w or distributed.World()), device) for part in micro]
    bf16 = cfg.autocast == "bf16" and device.type == "cuda"
    total = torch.zeros((), device=device)
    for part in micro:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, part) / len(micro)
        loss.backward()
        total = total + loss.detach()
    return total


def discard_stale_state(state_dir: Path, run: dict) -> None:
    """Start over when the saved state was trained with other settings or data than `run` describes.

    Trainers put in `run` everything a resumed state must agree with (seed, config without the
    step count, data checksum), so raising only the step count resumes a shorter run. `run` is
    compared in its JSON form, as run.json holds it: tuples there come back as lists, and an
    in-memory comparison would call every run with a tuple in it stale.
    """
    state_dir = Path(state_dir)
    run_file, state = state_dir / RUN_FILE, state_dir / STATE_FILE
    text = json.dumps(run, indent=2)
    wanted = json.loads(text)
    if state.exists():
        try:
            saved = json.loads(run_file.read_text())
        except (OSError, ValueError):  # missing, or (from older code) cut short by a kill
            saved = None
        if saved != wanted:
            saved = saved if isinstance(saved, dict) else {}
            differ = ", ".join(sorted(k for k in {*wanted, *saved} if saved.get(k) != wanted.get(k)))
            log.warning("%s was trained with other settings (%s differ): starting over", state, differ)
            state.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: a kill here must not leave a run.json that no rerun can read.
    tmp = run_file.with_name(run_file.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, run_file)
