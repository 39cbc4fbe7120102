"""A small model trained by the shared loop, as one process or under torchrun (tests only): a regression
(`--loss mse`), or two projections under CLAP's contrastive loss over the global batch (`--loss clip`).

torchrun --standalone --nproc_per_node=2 -m tests.distributed.worker --state S --out H.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from musicot.training import LoopConfig, step_rng, train_loop

W = torch.tensor([[2.0, -1.0, 0.5, 0.0], [0.3, 0.3, -2.0, 1.0]])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=16, help="the global batch of a step")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--loss", choices=("mse", "clip"), default="mse")
    parser.add_argument("--die-at", type=int, default=-1, help="rank 0 dies before this step (a time limit)")
    args = parser.parse_args()
    torch.manual_seed(int(os.environ.get("RANK", "0")) + 5)  # each rank its own init: the loop must align them
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)

    def next_batch(step: int):
        if step == args.die_at and os.environ.get("RANK", "0") == "0":
            os._exit(3)  # killed mid-run, as SLURM's time limit kills a job: no cleanup
        rng = step_rng(11, 0, step)
        x = torch.from_numpy(rng.normal(size=(args.batch, 4))).float()
        return x, x @ W.T + 0.05 * torch.from_numpy(rng.normal(size=(args.batch, 2))).float()

    def loss_fn(m, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(m(x), y)

    if args.loss == "clip":
        from musicot.clap.train import global_clip_loss

        clip = global_clip_loss()
        model = torch.nn.ModuleDict({"audio": model, "text": torch.nn.Linear(2, 2)})
        # plain SGD: Adam would hide a gradient off by a constant factor (the process count)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def loss_fn(m, batch):  # the regression's targets as the paired "texts"
            x, y = batch
            audio = torch.nn.functional.normalize(m["audio"](x), dim=-1)
            text = torch.nn.functional.normalize(m["text"](y), dim=-1)
            return clip(audio, text, torch.tensor(10.0))

    cfg = LoopConfig(max_steps=args.steps, eval_every=10, checkpoint_every=5, log_every=5, seed=2)
    history = train_loop(model, optimizer, next_batch, loss_fn, cfg, args.state)
    weights = [p.detach().reshape(-1).tolist() for p in model.parameters()]
    args.out.write_text(json.dumps({"train": history["train"], "weights": weights}))


if __name__ == "__main__":
    main()
