"""Residual VQ over CLAP window embeddings: the tokenizer of the musical thought.

One `vector_quantize_pytorch.ResidualVQ` with L levels of K codes each, codebooks learnt by
EMA (k-means initialised on the first batch, dead codes re-seeded from the batch), euclidean
distance on L2-normalised embeddings. The tiny preset (L=4, K=64) fits a few hundred windows;
the paper uses L=8, K=1024.

Training runs in the project's shared `train_loop`. EMA codebooks are buffers, not parameters:
a "step" is one forward pass in train mode (which k-means-initialises, then EMA-updates every
level and replaces dead codes); the optimizer is an SGD over an empty parameter group, so
`backward`/`step` are no-ops, and the logged loss is the summed per-level commitment MSE. The
loop still gives us seeding, exact resume from state.pt (buffers and RNG states are checkpointed),
evaluation history and logging.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from vector_quantize_pytorch import ResidualVQ

from musicot.config import build
from musicot.training import LoopConfig, discard_stale_state, train_loop

log = logging.getLogger("musicot.rvq")

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STREAM = 0
CHUNK = 4096  # rows encoded per forward pass
KMEANS_ROWS_PER_CODE = 16  # the first (k-means init) batch holds up to this many rows per code


@dataclass(frozen=True)
class RvqConfig:
    """rvq section of the validated config (see the schema for each key's meaning)."""

    levels: int
    codebook_size: int
    kmeans_init: bool
    kmeans_iters: int
    decay: float
    commitment_weight: float
    threshold_ema_dead_code: float
    steps: int
    batch_size: int
    eval_every: int

    @classmethod
    def from_config(cls, config: Mapping) -> RvqConfig:
        """From a validated top-level config."""
        return build(cls, config["rvq"])


def build_rvq(cfg: RvqConfig, dim: int) -> ResidualVQ:
    """An untrained ResidualVQ for `dim`-dimensional embeddings."""
    return ResidualVQ(
        dim=dim,
        num_quantizers=cfg.levels,
        codebook_size=cfg.codebook_size,
        kmeans_init=cfg.kmeans_init,
        kmeans_iters=cfg.kmeans_iters,
        decay=cfg.decay,
        commitment_weight=cfg.commitment_weight,
        threshold_ema_dead_code=cfg.threshold_ema_dead_code,
    )


def _tensor(emb) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(emb), dtype=torch.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (N, dim), got {tuple(x.shape)}")
    return x


def is_initialised(model: ResidualVQ) -> bool:
    """False while k-means-initialised codebooks still wait for their first training batch."""
    return all(bool(layer._codebook.initted) for layer in model.layers)


@torch.no_grad()
def encode(model: ResidualVQ, emb) -> np.ndarray:
    """(N, dim) embeddings -> (N, L) int64 codes (nearest code per level on the residual)."""
    if not is_initialised(model):  # the library would k-means-initialise on `emb`, even in eval mode
        raise ValueError("the RVQ codebooks are not initialised yet: train the model first")
    was_training = model.training
    model.eval()
    x = _tensor(emb)
    out = [model(chunk[:, None, :])[1][:, 0, :] for chunk in x.split(CHUNK)] if len(x) else []
    model.train(was_training)
    return torch.cat(out).long().numpy() if out else np.zeros((0, model.num_quantizers), np.int64)


@torch.no_grad()
def decode(model: ResidualVQ, codes, levels: int | None = None) -> np.ndarray:
    """(N, >=l) codes -> (N, dim): the sum of the codewords of the first `levels` levels.

    levels=None uses every column of `codes`; a prefix l < L is the coarse reconstruction.
    """
    idx = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    n_levels = model.num_quantizers
    levels = idx.shape[1] if levels is None else levels
    if idx.ndim != 2 or not 1 <= levels <= min(idx.shape[1], n_levels):
        raise ValueError(f"cannot decode {levels} levels from codes of shape {tuple(idx.shape)} ({n_levels} levels)")
    if levels == n_levels:
        return model.get_output_from_indices(idx[:, None, :]).squeeze(1).numpy()
    padded = torch.zeros(len(idx), 1, n_levels, dtype=torch.long)
    padded[:, 0, :levels] = idx[:, :levels]
    per_level = model.get_codes_from_indices(padded)  # (L, N, 1, dim)
    return model.project_out(per_level[:levels].sum(0)).squeeze(1).numpy()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float((num / den).mean())


def metrics(model: ResidualVQ, emb) -> dict[str, float]:
    """Per level l = 1..L: cos_l<l> (mean cosine of emb with its l-level prefix reconstruction),
    mse_l<l>, perplexity_l<l> and dead_l<l> (codes of level l unused on `emb`); plus
    roundtrip (share of rows whose decoded codes re-encode to the same codes)."""
    emb = np.asarray(emb, dtype=np.float32)
    codes = encode(model, emb)
    size = model.codebook_size
    out: dict[str, float] = {}
    for level in range(1, model.num_quantizers + 1):
        rec = decode(model, codes, level)
        out[f"cos_l{level}"] = _cosine(emb, rec)
        out[f"mse_l{level}"] = float(((emb - rec) ** 2).sum(1).mean())
    for level in range(model.num_quantizers):
        counts = np.bincount(codes[:, level], minlength=size)
        p = counts[counts > 0] / max(len(codes), 1)
        out[f"perplexity_l{level + 1}"] = float(np.exp(-(p * np.log(p)).sum()))
        out[f"dead_l{level + 1}"] = float((counts == 0).sum())
    out["roundtrip"] = float((encode(model, decode(model, codes)) == codes).all(1).mean()) if len(codes) else 1.0
    return out


def train_rvq(
    embeddings: np.ndarray, cfg: RvqConfig, state_dir: Path, seed: int = 0, valid: np.ndarray | None = None
) -> tuple[ResidualVQ, dict]:
    """Train on (N, dim) L2-normalised embeddings; returns the model (eval mode) and metrics.

    Batches depend only on (seed, step), so a resumed run draws the batches it would have.
    The first batch (the k-means initialisation) holds up to 16 rows per code, later ones
    `batch_size` rows drawn without replacement. Metrics are evaluated on `valid` when given
    (else on the training rows) every eval_every steps and at the end.
    """
    t0 = time.perf_counter()
    x = _tensor(embeddings)
    n, dim = x.shape
    if n == 0:
        raise ValueError("no training embeddings")
    if n < cfg.codebook_size:
        log.warning("%d training rows for %d codes per level: many codes will stay dead", n, cfg.codebook_size)
    eval_emb = x.numpy() if valid is None or len(valid) == 0 else np.asarray(valid, np.float32)
    # steps and eval_every may change between runs: a longer run resumes the shorter one's state.
    same = {k: v for k, v in asdict(cfg).items() if k not in ("steps", "eval_every")}
    run = {"seed": seed, "dim": dim, "rows": n, "checksum": float(x.double().sum()), **same}
    discard_stale_state(Path(state_dir), run)
    torch.manual_seed(seed)
    model = build_rvq(cfg, dim)
    optimizer = torch.optim.SGD([{"params": []}], lr=0.0)  # EMA codebooks: nothing to optimise

    def next_batch(step: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, TRAIN_STREAM, step])
        size = max(cfg.batch_size, KMEANS_ROWS_PER_CODE * cfg.codebook_size) if step == 0 else cfg.batch_size
        return x[torch.from_numpy(rng.permutation(n)[: min(size, n)])]

    def loss_fn(model: ResidualVQ, batch: torch.Tensor) -> torch.Tensor:
        _, _, commit = model(batch[:, None, :])
        loss = commit.sum()
        return loss if loss.requires_grad else loss.detach().requires_grad_()

    def evaluate(model: ResidualVQ) -> dict[str, float]:
        # Before the first step k-means codebooks are empty (and encoding would initialise them): no metrics.
        return metrics(model, eval_emb) if is_initialised(model) else {}

    loop = LoopConfig(cfg.steps, cfg.eval_every, cfg.eval_every, max(1, min(cfg.eval_every, cfg.steps)), seed)
    history = train_loop(model, optimizer, next_batch, loss_fn, loop, Path(state_dir), evaluate)
    model.eval()
    result = {
        "seed": seed,
        "dim": dim,
        "train_rows": n,
        "eval_rows": len(eval_emb),
        "train_wall_s": history["wall_s"],
        "wall_s": time.perf_counter() - t0,
        "train": metrics(model, x.numpy()),
        "valid": metrics(model, valid) if valid is not None and len(valid) else None,
        "config": asdict(cfg),
        "history": history,
    }
    return model, result


def save_rvq(model: ResidualVQ, cfg: RvqConfig, dim: int, out_dir: Path) -> None:
    """Write out_dir/model.safetensors (codebooks and EMA buffers) and out_dir/config.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(out_dir / WEIGHTS_FILE))
    meta = {"dim": dim, "levels": cfg.levels, "codebook_size": cfg.codebook_size, "config": asdict(cfg)}
    (out_dir / CONFIG_FILE).write_text(json.dumps(meta, indent=2))


def read_rvq_config(out_dir: Path) -> tuple[RvqConfig, int]:
    """The RvqConfig and embedding dim a saved model was trained with."""
    meta = json.loads((Path(out_dir) / CONFIG_FILE).read_text())
    return RvqConfig(**meta["config"]), int(meta["dim"])


def load_rvq(out_dir: Path) -> ResidualVQ:
    """A model written by `save_rvq`, in eval mode."""
    cfg, dim = read_rvq_config(out_dir)
    model = build_rvq(cfg, dim)
    model.load_state_dict(load_file(str(Path(out_dir) / WEIGHTS_FILE)))
    return model.eval()
