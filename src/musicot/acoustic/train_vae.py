"""Train the VAE-GAN on random segments of the train-split mixes (or load a pretrained one).

    python -m musicot.acoustic.train_vae --config CFG --tracks results/corpus/tracks.parquet \
        --out results/acoustic/vae --state results/acoustic/state/vae [--threads 2]

Writes --out as a diffusers AutoencoderOobleck folder (`from_pretrained` loads it) plus metrics.json
(the loop history: training loss and, on fixed held-out segments, the multi-resolution STFT distance;
parameter counts; wall time). With acoustic.vae.pretrained the local folder is copied and nothing is trained.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch

from musicot import distributed
from musicot.acoustic.config import AcousticConfig, cli_config
from musicot.acoustic.data import load_split_audio, random_crops
from musicot.acoustic.vae import MultiScaleSTFTDiscriminator, VaeGan, build_vae, stft_loss, vae_gan_loss
from musicot.training import LoopConfig, discard_stale_state, seed_everything, step_rng, train_loop

log = logging.getLogger("musicot.acoustic.train_vae")

METRICS_FILE = "metrics.json"
TRAIN_STREAM, EVAL_STREAM = 11, 12
EVAL_SEGMENTS = 8


def segment_length(cfg: AcousticConfig) -> int:
    """Samples per training segment: segment_s rounded to whole latent frames (the decoder emits whole hops)."""
    hop = cfg.vae.model.hop
    return max(1, round(cfg.vae.train.segment_s * cfg.sample_rate / hop)) * hop


def train(cfg: AcousticConfig, tracks_path: Path, out: Path, state: Path) -> dict:
    started = time.perf_counter()
    if cfg.vae.pretrained:
        src = Path(cfg.vae.pretrained)
        build_vae(cfg.vae, cfg.sample_rate, cfg.channels)  # checks the folder loads
        shutil.copytree(src, out, dirs_exist_ok=True)
        metrics = {"pretrained": str(src), "history": {"train": [], "eval": []}}
        (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        return metrics
    tracks, audio = load_split_audio(tracks_path, ("train", "valid"), cfg.sample_rate, cfg.channels)
    train_ids = sorted(tracks.loc[tracks["split"] == "train", "song_id"].astype(str))
    valid_ids = sorted(tracks.loc[tracks["split"] == "valid", "song_id"].astype(str)) or train_ids
    if not train_ids:
        raise ValueError(f"{tracks_path} has no train-split song: the VAE-GAN has nothing to train on")
    load_s = time.perf_counter() - started
    tc = cfg.vae.train
    length = segment_length(cfg)
    train_songs = [audio[s] for s in train_ids]
    eval_x, _, _ = random_crops(
        [audio[s] for s in valid_ids], length, EVAL_SEGMENTS, step_rng(cfg.seed, EVAL_STREAM, 0)
    )
    eval_x = torch.from_numpy(eval_x)

    checksums = tracks.get("content_sha1", tracks["song_id"]).astype(str)
    run = {
        "seed": cfg.seed,
        "data": sorted(zip(tracks["song_id"].astype(str), tracks["split"].astype(str), checksums, strict=True)),
        "sample_rate": cfg.sample_rate,
        "channels": cfg.channels,
        "model": asdict(cfg.vae.model),
        "discriminator": asdict(cfg.vae.discriminator),
        "train": {k: v for k, v in asdict(tc).items() if k not in ("eval_every", "checkpoint_every", "log_every")},
    }
    discard_stale_state(state, run)
    seed_everything(cfg.seed)
    device = distributed.device()  # under torchrun: this process' own GPU
    model = VaeGan(
        build_vae(cfg.vae, cfg.sample_rate, cfg.channels),
        MultiScaleSTFTDiscriminator(cfg.vae.discriminator, cfg.channels),
    ).to(device)
    stft = stft_loss(tc, cfg.sample_rate, cfg.channels).to(device)
    eval_x = eval_x.to(device)
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.vae.parameters()), "lr": tc.lr},
            {"params": list(model.disc.parameters()), "lr": tc.disc_lr},
        ],
        betas=tuple(tc.betas),
    )
    parts_log: list[tuple[int, dict]] = []

    def next_batch(step: int):
        x, _, _ = random_crops(train_songs, length, tc.batch_size, step_rng(cfg.seed, TRAIN_STREAM, step))
        return step, torch.from_numpy(x)

    def loss_fn(m: VaeGan, batch) -> torch.Tensor:
        step, x = batch
        loss, parts = vae_gan_loss(m, x, step, tc, stft)
        if step % tc.log_every == 0:
            parts_log.append((step, parts))
        return loss

    def evaluate(m: VaeGan) -> dict[str, float]:
        decoded, kl = m.reconstruct(eval_x, sample=False)
        return {"valid_stft_loss": float(stft(decoded, eval_x)), "valid_kl": float(kl)}

    loop = LoopConfig(tc.steps, tc.eval_every, tc.checkpoint_every, tc.log_every, cfg.seed)
    history = train_loop(model, optimizer, next_batch, loss_fn, loop, state, evaluate=evaluate)
    out.mkdir(parents=True, exist_ok=True)
    model.cpu().vae.save_pretrained(str(out))
    n_params = lambda mod: int(sum(p.numel() for p in mod.parameters()))  # noqa: E731
    metrics = {
        "history": history,
        "loss_parts": parts_log,
        "parameters": {"vae": n_params(model.vae), "discriminator": n_params(model.disc)},
        "hop": cfg.vae.model.hop,
        "latent_dim": cfg.vae.model.latent_dim,
        "frame_rate": cfg.sample_rate / cfg.vae.model.hop,
        "songs": {"train": len(train_ids), "valid": len(valid_ids)},
        "segment_samples": length,
        "walls_s": {"load": load_s, "train": history["wall_s"], "total": time.perf_counter() - started},
    }
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=float))
    log.info("vae: %d steps in %.1f s, valid STFT %s", tc.steps, history["wall_s"], history["eval"][-1][1])
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, acoustic)")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
    parser.add_argument("--out", type=Path, required=True, help="the VAE folder to write")
    parser.add_argument("--state", type=Path, required=True, help="resumable training state folder")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    train(cfg, args.tracks, args.out, args.state)


if __name__ == "__main__":
    main()
