"""The shared training loop: learns, stops at max_steps, resumes exactly, writes atomically,
refuses data without a learning signal."""

from __future__ import annotations

import pytest
import torch

from musicot.training import RUN_FILE, STATE_FILE, LoopConfig, NoLearningSignal, discard_stale_state, train_loop

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


def test_saved_state_is_kept_for_the_same_run_and_dropped_for_another(tmp_path):
    run = {"seed": 1, "data": [("song", "sha1")]}  # run.json gives the tuples back as lists
    discard_stale_state(tmp_path, run)
    (tmp_path / STATE_FILE).write_bytes(b"state")
    discard_stale_state(tmp_path, run)
    assert (tmp_path / STATE_FILE).exists()
    (tmp_path / RUN_FILE).write_text('{"seed": 1, "da')  # cut short: starts over rather than crashing
    discard_stale_state(tmp_path, run)
    assert not (tmp_path / STATE_FILE).exists()
    (tmp_path / STATE_FILE).write_bytes(b"state")
    discard_stale_state(tmp_path, {**run, "seed": 2})
    assert not (tmp_path / STATE_FILE).exists() and not list(tmp_path.glob("*.tmp"))


def _zero_loss(model, batch):
    """Identically 0, like a tagging loss over a batch without any label."""
    x, _ = batch
    return model(x).sum() * 0.0


def _flat_loss(model, batch):
    """ln(4) with exactly zero gradients: every class gets the same logit, like ClipLoss on identical pairs."""
    x, _ = batch
    logits = model(x).expand(-1, 4)
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(x)) % 4)


@pytest.mark.parametrize("loss_fn", [_zero_loss, _flat_loss], ids=["zero_loss", "zero_gradients"])
def test_no_learning_signal_is_refused_before_any_checkpoint(tmp_path, loss_fn):
    model, opt, sched = _setup()
    with pytest.raises(NoLearningSignal, match="no learning signal") as error:
        train_loop(model, opt, _next_batch, loss_fn, _cfg(), tmp_path, evaluate=_eval, scheduler=sched)
    assert str(tmp_path) in str(error.value) and "first 5 steps" in str(error.value)
    assert not list(tmp_path.iterdir())  # no state.pt: a rerun starts afresh


def test_a_signal_in_any_probed_step_or_parameter_is_enough(tmp_path):
    model, opt, sched = _setup()
    model.bias.requires_grad_(False)  # a frozen parameter has no gradient at all
    calls: list[int] = []

    def late_signal(model, batch):  # only the last of the 5 probed steps has a gradient
        calls.append(len(calls))
        return _loss(model, batch) if calls[-1] == 4 else _zero_loss(model, batch)

    history = train_loop(model, opt, _next_batch, late_signal, _cfg(max_steps=10), tmp_path, scheduler=sched)
    assert history["train"][-1][0] == 10 and (tmp_path / STATE_FILE).exists()


def test_an_optimizer_without_parameters_is_not_probed(tmp_path):
    """EMA-trained models (the RVQ's codebooks) learn outside the optimizer."""
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD([{"params": []}], lr=0.0)
    history = train_loop(model, opt, _next_batch, _zero_loss, _cfg(max_steps=5), tmp_path)
    assert history["train"] == [(5, 0.0)]


def test_gradient_accumulation_equals_one_large_batch(tmp_path):
    """Two micro-batches of 4 per step train exactly like one batch of 8 (mean losses, plain SGD)."""
    x, y = torch.randn(16, 3, generator=torch.Generator().manual_seed(0)), torch.randn(16, 1)

    def fit(accum: int, folder: str) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        rows = [torch.arange(8) + 8 * (s % 2) for s in range(6)]

        def next_batch(step: int):
            idx = rows[step]
            return idx if accum == 1 else list(idx.chunk(accum))

        def loss_fn(m, idx):
            return torch.nn.functional.mse_loss(m(x[idx]), y[idx])

        cfg = LoopConfig(max_steps=6, eval_every=6, checkpoint_every=6, log_every=3, seed=1, grad_accum=accum)
        history = train_loop(model, optimizer, next_batch, loss_fn, cfg, tmp_path / folder)
        return torch.cat([model.weight.flatten(), model.bias]), history["train"]

    (w1, h1), (w2, h2) = fit(1, "one"), fit(2, "two")
    assert torch.allclose(w1, w2, atol=1e-6)
    assert [s for s, _ in h1] == [s for s, _ in h2]
    assert all(abs(a - b) < 1e-6 for (_, a), (_, b) in zip(h1, h2, strict=True))
    with pytest.raises(ValueError, match="micro-batches"):
        cfg = LoopConfig(max_steps=1, eval_every=1, checkpoint_every=1, log_every=1, seed=1, grad_accum=3)
        train_loop(
            torch.nn.Linear(3, 1),
            torch.optim.SGD(torch.nn.Linear(3, 1).parameters(), 0.1),
            lambda s: [0, 1],
            lambda m, i: m(x[:2]).sum(),
            cfg,
            tmp_path / "bad",
        )
