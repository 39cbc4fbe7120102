"""Train the latent DiT on the pre-encoded frames of the train songs, conditioned on their semantic tokens.

    python -m musicot.acoustic.train_dit --config CFG --tracks results/corpus/tracks.parquet \
        --latents results/acoustic/latents --tokens results/semantic/tokens \
        --clap results/clap/embeddings --out results/acoustic/dit --state results/acoustic/state/dit

Batches are random crops (acoustic.dit.train.segment_s) of normalised frames with the tokens under them,
the song's CLAP vector (re-normalised mean of its window embeddings) and its duration; conditions are
dropped as classifier-free guidance needs (all together with cond_dropout, CLAP alone with clap_dropout).
Writes --out (see musicot.acoustic.dit.save_dit) with metrics.json: the loop history (training v-loss,
held-out v-loss at fixed times and noise, conditional and unconditional) and wall time.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicot import distributed
from musicot.acoustic.config import AcousticConfig, cli_config
from musicot.acoustic.data import random_crops
from musicot.acoustic.dit import AcousticDiT, build_dit, save_dit, v_objective
from musicot.acoustic.latents import load_frames, read_index
from musicot.acoustic.sample import conditions, crop_conditions, unconditional
from musicot.training import LoopConfig, cosine_schedule, discard_stale_state, seed_everything, step_rng, train_loop

log = logging.getLogger("musicot.acoustic.train_dit")

METRICS_FILE = "metrics.json"
TRAIN_STREAM, EVAL_STREAM = 21, 22
EVAL_CROPS = 16


def song_claps(clap_dir: Path) -> dict[str, np.ndarray]:
    """song_id -> the song's CLAP vector (re-normalised mean of its window embeddings)."""
    from musicot.analysis.thought import load_window_embeddings
    from musicot.clap.tags import song_embeddings

    table, emb = load_window_embeddings(Path(clap_dir))
    return song_embeddings(table, emb)


class SongData:
    """Normalised frames, tokens, CLAP vectors and durations of some songs, and crops of them."""

    def __init__(self, ids, frames, tokens, claps, durations):
        self.ids, self.frames, self.tokens, self.claps, self.durations = ids, frames, tokens, claps, durations

    def batch(self, model: AcousticDiT, n_frames: int, size: int, rng: np.random.Generator, drop: tuple[float, float]):
        x, which, starts = random_crops([self.frames[i] for i in range(len(self.ids))], n_frames, size, rng)
        ft, ct = zip(
            *(crop_conditions(model, self.tokens[i], n_frames, int(s)) for i, s in zip(which, starts, strict=True)),
            strict=True,
        )
        clap = np.stack([self.claps[i] for i in which]).astype(np.float32)
        all_drop = rng.random(size) < drop[0]
        clap_drop = all_drop | (rng.random(size) < drop[1])
        clap[clap_drop] = np.nan
        ft, ct = np.stack(ft), np.stack(ct)
        ft[all_drop] = model.null_token
        ct[all_drop] = model.null_token
        cond = conditions(model, ft, ct, clap, np.array([self.durations[i] for i in which]))
        noise = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
        t = torch.from_numpy(rng.random(size).astype(np.float32))
        return torch.from_numpy(x), t, noise, cond


def load_songs(ids, latents: Path, tokens_dir: Path, claps: dict, index: dict) -> SongData:
    mean = np.asarray(index["mean"], np.float32)[:, None]
    std = np.asarray(index["std"], np.float32)[:, None]
    missing = [s for s in ids if s not in claps]
    if missing:
        raise ValueError(f"no CLAP embedding for songs {missing[:5]}: the CLAP folder does not match the corpus")
    frames = [(load_frames(latents, s) - mean) / std for s in ids]
    tokens = [np.load(Path(tokens_dir) / f"{s}.npy").astype(np.int64) for s in ids]
    return SongData(list(ids), frames, tokens, [claps[s] for s in ids], [index["songs"][s]["duration_s"] for s in ids])


def train(
    cfg: AcousticConfig, sem, tracks_path: Path, latents: Path, tokens_dir: Path, clap_dir: Path, out: Path, state: Path
) -> dict:
    started = time.perf_counter()
    index = read_index(latents)
    if index["space"] != cfg.space:
        raise ValueError(
            f"{latents} holds '{index['space']}' frames but acoustic.space is '{cfg.space}': re-encode them"
        )
    tracks = pd.read_parquet(tracks_path)
    split = dict(zip(tracks["song_id"].astype(str), tracks["split"].astype(str), strict=True))
    train_ids = sorted(s for s, sp in split.items() if sp == "train")
    valid_ids = sorted(s for s, sp in split.items() if sp == "valid") or train_ids
    if not train_ids:
        raise ValueError(f"{tracks_path} has no train-split song: the DiT has nothing to train on")
    claps = song_claps(clap_dir)
    clap_dim = len(next(iter(claps.values())))
    tc = cfg.dit.train
    n_frames = max(1, round(tc.segment_s * index["frame_rate"]))

    run = {
        "seed": cfg.seed,
        "space": cfg.space,
        "index_mean": index["mean"][:4],
        "songs": sorted(split.items()),
        "dit": {k: v for k, v in asdict(cfg.dit).items() if k != "sample"},
        # how activations are kept changes memory, not the weights: such a state resumes
        "train": {
            k: v
            for k, v in asdict(tc).items()
            if k not in ("eval_every", "checkpoint_every", "log_every", "gradient_checkpointing")
        },
    }
    discard_stale_state(state, run)
    seed_everything(cfg.seed)
    model = build_dit(
        cfg.dit,
        cfg.space,
        index["dim"],
        index["frame_rate"],
        1.0 / sem.features.frame_s,
        sem.n_tokens,
        clap_dim,
        np.asarray(index["mean"]),
        np.asarray(index["std"]),
    )
    device = distributed.device()  # under torchrun: this process' own GPU
    model.to(device)
    train_data = load_songs(train_ids, latents, tokens_dir, claps, index)
    valid_data = load_songs(valid_ids, latents, tokens_dir, claps, index)
    eval_x, eval_t, eval_noise, eval_cond = valid_data.batch(
        model, n_frames, EVAL_CROPS, step_rng(cfg.seed, EVAL_STREAM, 0), (0.0, 0.0)
    )
    eval_uncond = unconditional(model, eval_cond)
    eval_x, eval_t, eval_noise, eval_cond, eval_uncond = distributed.to_device(
        (eval_x, eval_t, eval_noise, eval_cond, eval_uncond), device
    )

    def evaluate(m: AcousticDiT) -> dict[str, float]:
        return {
            "valid_loss": float(v_objective(m, eval_x, eval_t, eval_noise, eval_cond)),
            "valid_uncond_loss": float(v_objective(m, eval_x, eval_t, eval_noise, eval_uncond)),
        }

    def micro_batch(step: int, micro: int):
        # micro-batch 0 of a step is the whole step's batch without accumulation: the same draws
        rng = (
            step_rng(cfg.seed, TRAIN_STREAM, step)
            if micro == 0
            else np.random.default_rng([cfg.seed, TRAIN_STREAM, step, micro])
        )
        return train_data.batch(model, n_frames, tc.batch_size, rng, (tc.cond_dropout, tc.clap_dropout))

    def next_batch(step: int):
        if tc.grad_accum == 1:
            return micro_batch(step, 0)
        return [micro_batch(step, m) for m in range(tc.grad_accum)]

    if tc.gradient_checkpointing:
        model.transformer.enable_gradient_checkpointing()

    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = cosine_schedule(optimizer, tc.warmup_steps, tc.steps)
    loop = LoopConfig(
        tc.steps,
        tc.eval_every,
        tc.checkpoint_every,
        tc.log_every,
        cfg.seed,
        grad_accum=tc.grad_accum,
        autocast="bf16" if tc.bf16 else "",
    )
    history = train_loop(
        model,
        optimizer,
        next_batch,
        lambda m, b: v_objective(m, b[0], b[1], b[2], b[3]),
        loop,
        state,
        evaluate=evaluate,
        scheduler=scheduler,
    )
    metrics = {
        "history": history,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "segment_frames": n_frames,
        "songs": {"train": len(train_ids), "valid": len(valid_ids)},
        "walls_s": {"train": history["wall_s"], "total": time.perf_counter() - started},
    }
    save_dit(model.cpu(), out)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=float))
    log.info("dit: %d steps in %.1f s, %s", tc.steps, history["wall_s"], history["eval"][-1][1])
    return metrics


def main(argv: list[str] | None = None) -> None:
    from musicot.config import load_config
    from musicot.semantic.config import SemanticConfig

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, acoustic, semantic)")
    parser.add_argument("--tracks", type=Path, required=True)
    parser.add_argument("--latents", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--clap", type=Path, required=True, help="CLAP embedding folder (windows.parquet/.npy)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    sem = SemanticConfig.from_config(load_config(args.config))
    train(cfg, sem, args.tracks, args.latents, args.tokens, args.clap, args.out, args.state)


if __name__ == "__main__":
    main()
