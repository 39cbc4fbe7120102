"""Self-supervised BEST-RQ training of the encoder through the shared `train_loop`.

A batch of step k: `batch_size` random crops of `crop_s` from the train-split songs and their
span masks, drawn from `step_rng(seed, SSL_STREAM, k)`. Evaluation: masked-prediction loss and
accuracy on one fixed set of valid-split crops (the train crops when there is no valid song).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from musicot import distributed
from musicot.semantic.config import FeatureConfig, ModelConfig, SslConfig
from musicot.semantic.data import SSL_EVAL_STREAM, SSL_STREAM, crop_frames, random_crops, span_mask
from musicot.semantic.model import BestRq
from musicot.training import LoopConfig, cosine_schedule, discard_stale_state, seed_everything, step_rng, train_loop

EVAL_CROPS = 32  # fixed evaluation crops: ~1000 masked frames, so the accuracy moves by more than noise


def ssl_batch(songs: Sequence[np.ndarray], crop: int, batch_size: int, cfg: SslConfig, rng: np.random.Generator):
    """(features (B, crop, dim), mask (B, crop)) tensors of one draw."""
    x = random_crops(songs, crop, batch_size, rng)
    mask = span_mask(x.shape[:2], cfg.mask_prob, cfg.mask_span, rng)
    return torch.from_numpy(x), torch.from_numpy(mask)


def train_ssl(
    train: Sequence[np.ndarray],
    valid: Sequence[np.ndarray],
    features: FeatureConfig,
    model_cfg: ModelConfig,
    cfg: SslConfig,
    state_dir: Path,
    seed: int,
    run: dict,
) -> tuple[BestRq, dict]:
    """Train BEST-RQ on normalised train-split feature rows; returns the model and the loop's history.

    `run` describes the data and settings a saved state must match to be resumed (`discard_stale_state`).
    """
    if not train:
        raise ValueError("no train-split songs: the semantic encoder has nothing to train on")
    discard_stale_state(state_dir, run)
    seed_everything(seed)  # the initial weights and the random projection are part of the seeded run
    device = distributed.device()  # under torchrun: this process' own GPU
    model = BestRq(model_cfg, features, cfg).to(device)
    crop = crop_frames(list(train) + list(valid), round(cfg.crop_s / features.frame_s))
    eval_x, eval_mask = ssl_batch(valid or train, crop, EVAL_CROPS, cfg, step_rng(seed, SSL_EVAL_STREAM, 0))
    eval_x, eval_mask = eval_x.to(device), eval_mask.to(device)

    def evaluate(m: BestRq) -> dict[str, float]:
        loss, acc = m(eval_x, eval_mask)
        return {"loss": float(loss), "acc": float(acc)}

    optimizer = torch.optim.AdamW(model.trained_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = cosine_schedule(optimizer, cfg.warmup_steps, cfg.steps)
    loop = LoopConfig(cfg.steps, cfg.eval_every, cfg.checkpoint_every, cfg.log_every, seed)
    history = train_loop(
        model,
        optimizer,
        lambda step: ssl_batch(train, crop, cfg.batch_size, cfg, step_rng(seed, SSL_STREAM, step)),
        lambda m, batch: m(*batch)[0],
        loop,
        state_dir,
        evaluate=evaluate,
        scheduler=scheduler,
    )
    history["crop_frames"] = crop
    history["chance_acc"] = 1.0 / cfg.codebook_size
    return model.cpu(), history
