"""Training the tiny HTDemucs separator on the corpus stems (when no public checkpoint is configured).

The stems of the train split are decoded and resampled to the model rate once, into memory
(as float16: the files are 16-bit anyway, and it halves the footprint). Each step draws
`batch_size` random crops of `crop_s`; with probability `remix_prob` a crop is remixed, every
stem taken from a different song at its own offset (demucs' remix augmentation), which gives
far more distinct mixtures than a small corpus has. Then demucs' own augmentation changes the
stems (`separate_augment`: polarity, left/right, gain, mono downmix); the input is the sum of
the augmented stems, the target the stems themselves.

The loss is waveform MSE by default, not demucs' L1: SDR is the ratio of the stems' energy to
the squared error, so MSE is the loss the metric reads, and at a CPU budget of a few hundred
steps it moved every stem off 0 dB sooner (L1's gradient has the same size for every error, so
a small model first settles on near-silent estimates and leaves them one stem at a time).
`loss: l1` gives demucs' choice back.

The shared `musicot.training.train_loop` runs it and evaluates the same fixed validation crops
every `eval_every` steps: the loss and each stem's SDR over all crops together, so
metrics.json holds the SDR-against-training-time curve (`report.separator_curve` draws it).

Batches depend only on (seed, step), so a resumed run draws exactly the batches it would have.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from musicot import distributed
from musicot.data.table import STEMS
from musicot.distributed import threads_per_process
from musicot.prep.separate import (
    METRICS_FILE,
    TRAINED_NAME,
    SeparationConfig,
    build_model,
    read_at,
    save_separator,
)
from musicot.prep.separate_augment import augment_stems, build_augment, mix_of
from musicot.training import LoopConfig, cosine_schedule, discard_stale_state, step_rng, train_loop

log = logging.getLogger("musicot.prep.separate")

STORE_DTYPE = torch.float16
VALID_CROPS = 16  # fixed validation crops, spread over the valid songs
LOG_EVERY = 10
CHECKPOINT_EVERY = 50
WARMUP_FRACTION = 0.05  # of the steps, under lr_schedule: cosine
TRAIN_STREAM, VALID_STREAM = 0, 1  # independent RNG streams under one seed
# Settings a saved state must share to be resumed (steps may grow; apply-time keys do not matter).
RESUME_KEYS = (
    "sample_rate",
    "channels",
    "depth",
    "t_layers",
    "nfft",
    "segment_s",
    "batch_size",
    "crop_s",
    "lr",
    "lr_schedule",
    "loss",
    "remix_prob",
    "gain_range",
    "flip_sign",
    "flip_channels",
    "mono_prob",
)


def load_stem_bank(tracks: pd.DataFrame, sample_rate: int, min_frames: int) -> list[torch.Tensor]:
    """(stems, channels, frames) per song at `sample_rate`; a missing stem file is silence.

    Songs shorter than `min_frames` are zero-padded so every song can give a full crop.
    """
    bank = []
    for song in tracks.itertuples():
        paths = [Path(song.stems_dir) / f"{stem}.flac" for stem in STEMS]
        audio = {p: read_at(p, sample_rate) for p in paths if p.exists()}
        if not audio:
            log.warning("%s: no stem files in %s, skipped", song.song_id, song.stems_dir)
            continue
        n = max(min(len(a) for a in audio.values()), min_frames)
        stems = np.zeros((len(STEMS), 2, n), dtype=np.float32)
        for i, path in enumerate(paths):
            if path in audio:
                part = audio[path][:n].T
                stems[i, :, : part.shape[1]] = part
        bank.append(torch.from_numpy(stems).to(STORE_DTYPE))
    return bank


def _crop(stems: torch.Tensor, rng: np.random.Generator, frames: int) -> torch.Tensor:
    start = int(rng.integers(0, stems.shape[-1] - frames + 1))
    return stems[..., start : start + frames]


def draw_item(bank: list[torch.Tensor], rng: np.random.Generator, frames: int, remix_prob: float) -> torch.Tensor:
    """One (stems, channels, frames) crop; remixed (each stem from its own song) with prob remix_prob."""
    if rng.random() < remix_prob:
        return torch.stack([_crop(bank[int(rng.integers(len(bank)))][s], rng, frames) for s in range(len(STEMS))])
    return _crop(bank[int(rng.integers(len(bank)))], rng, frames)


LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def separation_loss(kind: str):
    """loss(model, stems) -> the waveform `kind` loss between the separated sum of `stems` and the stems."""
    measure = LOSSES[kind]

    def loss(model: torch.nn.Module, stems: torch.Tensor) -> torch.Tensor:
        return measure(model(mix_of(stems)), stems)

    return loss


def pooled_sdr(truth: torch.Tensor, estimate: torch.Tensor) -> list[float]:
    """Per-stem SDR in dB of (crops, stems, channels, time) tensors, energies summed over all crops."""
    truth, estimate = truth.double(), estimate.double()
    signal = truth.pow(2).sum(dim=(0, 2, 3))
    error = (truth - estimate).pow(2).sum(dim=(0, 2, 3)).clamp_min(1e-20)
    return (10 * torch.log10(signal.clamp_min(1e-20) / error)).tolist()


def _validation(bank: list[torch.Tensor], frames: int, seed: int, batch_size: int, kind: str):
    """evaluate(model) -> {"loss", "sdr_<stem>"...} over VALID_CROPS fixed, un-augmented crops (None without songs)."""
    if not bank:
        log.warning("no valid-split songs with stems: training runs without validation")
        return None
    rng = np.random.default_rng([seed, VALID_STREAM])
    crops = torch.stack([_crop(bank[i % len(bank)], rng, frames) for i in range(VALID_CROPS)]).float()
    measure = LOSSES[kind]

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        t0 = time.perf_counter()
        device = next(model.parameters()).device  # the trainer's (a GPU under torchrun)
        estimate = torch.cat([model(mix_of(batch.to(device))).cpu() for batch in crops.split(batch_size)])
        sdrs = pooled_sdr(crops, estimate)
        metrics = {"loss": float(measure(estimate, crops))}
        metrics.update({f"sdr_{stem}": value for stem, value in zip(STEMS, sdrs, strict=True)})
        metrics["eval_s"] = time.perf_counter() - t0  # taken out of the curve's training seconds
        return metrics

    return evaluate


def train_separator(
    tracks: pd.DataFrame,
    cfg: SeparationConfig,
    out_dir: Path,
    state_dir: Path,
    threads: int | None = None,
    seed: int = 0,
) -> tuple[torch.nn.Module, dict]:
    """Train on the train-split stems and save `out_dir/<name>.th`, config.json and metrics.json.

    Returns the trained model (eval mode) and the metrics written to metrics.json.
    """
    if threads:
        torch.set_num_threads(threads_per_process(threads))
    t0 = time.perf_counter()
    with_stems = tracks[tracks["stems_dir"] != ""]
    train, valid = (with_stems[with_stems["split"] == split] for split in ("train", "valid"))
    if train.empty:
        raise ValueError(
            "no train-split songs with stems: cannot train the separator; for a corpus without stems "
            "set prep.separation.checkpoint to a local Demucs checkpoint folder (e.g. htdemucs_6s)"
        )
    frames = round(cfg.crop_s * cfg.sample_rate)
    bank = load_stem_bank(train, cfg.sample_rate, frames)
    evaluate = _validation(load_stem_bank(valid, cfg.sample_rate, frames), frames, seed, cfg.batch_size, cfg.loss)
    load_s = time.perf_counter() - t0
    log.info("loaded stems of %d train / %d valid songs in %.1f s", len(train), len(valid), load_s)

    # Another corpus (songs, their audio or split) trains afresh, as other settings do.
    songs = with_stems.assign(sha1=with_stems.get("content_sha1", with_stems["song_id"])).sort_values("song_id")
    data = songs[["song_id", "sha1", "split"]].astype(str).to_numpy().tolist()
    run = {"seed": seed, "data": data, **{k: getattr(cfg, k) for k in RESUME_KEYS}}
    if cfg.lr_schedule == "cosine":  # the schedule's length is part of what was trained
        run["steps"] = cfg.steps
    discard_stale_state(Path(state_dir), run)
    torch.manual_seed(seed)  # the initial weights (train_loop seeds again before stepping)
    model = build_model(cfg).to(distributed.device())  # under torchrun: this process' own GPU
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    warmup = max(1, round(WARMUP_FRACTION * cfg.steps))
    scheduler = cosine_schedule(optimizer, warmup, cfg.steps) if cfg.lr_schedule == "cosine" else None

    pipeline = build_augment(cfg.gain_range, cfg.flip_sign, cfg.flip_channels, cfg.mono_prob)

    def next_batch(step: int) -> torch.Tensor:
        rng = step_rng(seed, TRAIN_STREAM, step)
        stems = torch.stack([draw_item(bank, rng, frames, cfg.remix_prob) for _ in range(cfg.batch_size)]).float()
        return augment_stems(pipeline, stems, seed, step)

    loop = LoopConfig(cfg.steps, cfg.eval_every, CHECKPOINT_EVERY, LOG_EVERY, seed)
    loss_fn = separation_loss(cfg.loss)
    history = train_loop(model, optimizer, next_batch, loss_fn, loop, Path(state_dir), evaluate, scheduler)
    last = history["eval"][-1][1] if history["eval"] else {}
    save_separator(model.cpu(), cfg, Path(out_dir))
    metrics = {
        "name": TRAINED_NAME,
        "params": sum(p.numel() for p in model.parameters()),
        "seed": seed,
        "steps": cfg.steps,
        "train_songs": len(bank),
        "valid_songs": len(valid),
        "load_s": load_s,
        "train_wall_s": history["wall_s"],
        "wall_s": time.perf_counter() - t0,
        "loss_first": history["train"][0][1],
        "loss_last": history["train"][-1][1],
        "loss": cfg.loss,
        "valid_loss_first": history["eval"][0][1]["loss"] if history["eval"] else None,
        "valid_loss_last": last.get("loss"),
        "valid_crop_sdr_last": {stem: last[f"sdr_{stem}"] for stem in STEMS} if last else None,
        "config": asdict(cfg),
        "history": history,
    }
    (Path(out_dir) / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.info("separator: loss %.4f -> %.4f in %.0f s", metrics["loss_first"], metrics["loss_last"], history["wall_s"])
    return model.eval(), metrics
