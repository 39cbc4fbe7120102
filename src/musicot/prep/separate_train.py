"""Training the tiny HTDemucs separator on the corpus stems (when no public checkpoint is configured).

The stems of the train split are decoded and resampled to the model rate once, into memory
(as float16: the files are 16-bit anyway, and it halves the footprint). Each step draws
`batch_size` random crops of `crop_s`; with probability `remix_prob` a crop is remixed, every
stem taken from a different song at its own offset (demucs' remix augmentation), which gives
far more distinct mixtures than a small corpus has. The input is the sum of the stems, the
target the stems themselves, the loss waveform L1 (as demucs). The shared
`musicot.training.train_loop` runs it and evaluates the same fixed validation crops every
`eval_every` steps, so the curve is comparable across runs.

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

from musicot.data.table import STEMS
from musicot.prep.separate import (
    METRICS_FILE,
    TRAINED_NAME,
    SeparationConfig,
    build_model,
    read_at,
    save_separator,
)
from musicot.training import LoopConfig, discard_stale_state, train_loop

log = logging.getLogger("musicot.prep.separate")

STORE_DTYPE = torch.float16
VALID_CROPS = 16  # fixed validation crops, spread over the valid songs
LOG_EVERY = 10
CHECKPOINT_EVERY = 50
TRAIN_STREAM, VALID_STREAM = 0, 1  # independent RNG streams under one seed
# Settings a saved state must share to be resumed (steps may grow; apply-time keys do not matter).
RESUME_KEYS = ("sample_rate", "channels", "depth", "t_layers", "segment_s", "batch_size", "crop_s", "lr", "remix_prob")


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


def l1_loss(model: torch.nn.Module, stems: torch.Tensor) -> torch.Tensor:
    """Waveform L1 between the separated mixture (sum of stems) and the stems."""
    return F.l1_loss(model(stems.sum(dim=1)), stems)


def _validation(bank: list[torch.Tensor], frames: int, seed: int, batch_size: int):
    """evaluate(model) -> {"l1": ...} over VALID_CROPS fixed, un-remixed crops (None without songs)."""
    if not bank:
        log.warning("no valid-split songs with stems: training runs without validation")
        return None
    rng = np.random.default_rng([seed, VALID_STREAM])
    crops = torch.stack([_crop(bank[i % len(bank)], rng, frames) for i in range(VALID_CROPS)]).float()

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        losses = [float(l1_loss(model, batch)) * len(batch) for batch in crops.split(batch_size)]
        return {"l1": sum(losses) / len(crops)}

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
        torch.set_num_threads(threads)
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
    evaluate = _validation(load_stem_bank(valid, cfg.sample_rate, frames), frames, seed, cfg.batch_size)
    load_s = time.perf_counter() - t0
    log.info("loaded stems of %d train / %d valid songs in %.1f s", len(train), len(valid), load_s)

    # Another corpus (songs, their audio or split) trains afresh, as other settings do.
    songs = with_stems.assign(sha1=with_stems.get("content_sha1", with_stems["song_id"])).sort_values("song_id")
    data = songs[["song_id", "sha1", "split"]].astype(str).to_numpy().tolist()
    discard_stale_state(Path(state_dir), {"seed": seed, "data": data, **{k: getattr(cfg, k) for k in RESUME_KEYS}})
    torch.manual_seed(seed)  # the initial weights (train_loop seeds again before stepping)
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def next_batch(step: int) -> torch.Tensor:
        rng = np.random.default_rng([seed, TRAIN_STREAM, step])
        return torch.stack([draw_item(bank, rng, frames, cfg.remix_prob) for _ in range(cfg.batch_size)]).float()

    loop = LoopConfig(cfg.steps, cfg.eval_every, CHECKPOINT_EVERY, LOG_EVERY, seed)
    history = train_loop(model, optimizer, next_batch, l1_loss, loop, Path(state_dir), evaluate)
    save_separator(model, cfg, Path(out_dir))
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
        "valid_l1_first": history["eval"][0][1]["l1"] if history["eval"] else None,
        "valid_l1_last": history["eval"][-1][1]["l1"] if history["eval"] else None,
        "config": asdict(cfg),
        "history": history,
    }
    (Path(out_dir) / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.info("separator: loss %.4f -> %.4f in %.0f s", metrics["loss_first"], metrics["loss_last"], history["wall_s"])
    return model.eval(), metrics
