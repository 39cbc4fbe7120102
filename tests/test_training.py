"""The shared training loop: learns, stops at max_steps, resumes exactly, writes atomically."""

from __future__ import annotations

import pytest
import torch

from musicot.training import STATE_FILE, LoopConfig, train_loop

TRUE_W = torch.tensor([[2.0, -1.0, 0.5]])


def _setup(seed: int = 0):
    """A linear model, SGD with momentum and a step scheduler (so all three states matter)."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)
    return model, opt, sched


def _next_batch(step: int):
    # Drawn from the global torch RNG on purpose: resume must restore it to be exact.
    x = torch.randn(16, 3)
    return x, x @ TRUE_W.T + 0.01 * torch.randn(16, 1)


def _loss(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def _eval(model):
    x = torch.eye(3)
    return {"w_err": float((model(x) - model.bias - x @ TRUE_W.T).abs().mean())}


def _cfg(**kw) -> LoopConfig:
    return LoopConfig(**{"max_steps": 40, "eval_every": 10, "checkpoint_every": 5, "log_every": 5, "seed": 3, **kw})


def test_loss_drops_and_stops_at_max_steps(tmp_path):
    model, opt, sched = _setup()
    calls = []

    def next_batch(step):
        calls.append(step)
        return _next_batch(step)

    history = train_loop(model, opt, next_batch, _loss, _cfg(), tmp_path, evaluate=_eval, scheduler=sched)
    assert calls == list(range(40))
    losses = [loss for _, loss in history["train"]]
    assert [s for s, _ in history["train"]] == list(range(5, 41, 5))
    assert losses[-1] < 0.05 * losses[0]
    assert [s for s, _ in history["eval"]] == [0, 10, 20, 30, 40]
    assert history["eval"][-1][1]["w_err"] < history["eval"][0][1]["w_err"]
    assert history["seed"] == 3 and history["wall_s"] > 0
    assert (tmp_path / STATE_FILE).exists() and not list(tmp_path.glob("*.tmp"))
    # A finished run started again does nothing more.
    again = train_loop(model, opt, next_batch, _loss, _cfg(), tmp_path, evaluate=_eval, scheduler=sched)
    assert len(calls) == 40 and again["train"] == history["train"]


class _Killed(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    cfg = _cfg(log_every=3)  # the kill lands inside a log interval: its partial sum must survive
    model, opt, sched = _setup()
    full = train_loop(model, opt, _next_batch, _loss, cfg, tmp_path / "full", evaluate=_eval, scheduler=sched)
    expected = {k: v.clone() for k, v in model.state_dict().items()}

    def dies_at_23(step):
        if step == 23:
            raise _Killed
        return _next_batch(step)

    state_dir = tmp_path / "resumed"
    model, opt, sched = _setup()
    with pytest.raises(_Killed):
        train_loop(model, opt, dies_at_23, _loss, cfg, state_dir, evaluate=_eval, scheduler=sched)
    assert torch.load(state_dir / STATE_FILE, weights_only=False)["step"] == 20
    # A fresh process: other initial weights and RNG state, everything comes from the checkpoint.
    model, opt, sched = _setup(seed=99)
    torch.randn(100)
    resumed = train_loop(model, opt, _next_batch, _loss, cfg, state_dir, evaluate=_eval, scheduler=sched)
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert resumed["train"] == full["train"]
    assert resumed["eval"] == full["eval"]


def test_only_rank_zero_writes_under_ddp(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    model, opt, _ = _setup()
    train_loop(model, opt, _next_batch, _loss, _cfg(max_steps=5), tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
