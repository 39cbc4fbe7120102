"""Train the CLAP model on corpus windows, then embed every window and the anchor/tag/caption texts.

    python -m musicot.clap.train train --config CFG --tracks results/corpus/tracks.parquet \
        --out results/clap/model [--state-dir results/clap/state] [--threads 2]
    python -m musicot.clap.train embed --config CFG --tracks results/corpus/tracks.parquet \
        --model results/clap/model --out results/clap/embeddings

`train` pairs every 10 s window (hop ``clap.train_hop_s``) of the train split with a caption
written from its stem truth (musicot.clap.data), minimises laion's ``ClipLoss`` through the
project's `train_loop`, and writes ``model.pt`` + ``config.json`` + ``metrics.json`` (history
and final valid metrics) to --out. With ``clap.pretrained`` set (paper preset), the laion
checkpoint is loaded first; ``clap.max_steps: 0`` then only evaluates and saves it.

`embed` writes, for every song, ``windows.parquet`` (song_id, window, start, end, split) +
``windows.npy`` (float32, L2-normalised, same row order), ``text.parquet`` (text, kind:
anchor | tag:<family> | caption) + ``text.npy``, and ``metrics.json`` / ``quality.csv`` with the
valid-split metrics: audio->text recall@1/@5 over the distinct window captions and the
zero-shot AUC per anchor stem (anchor text similarity vs the stem being active).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from musicot import distributed
from musicot.audio import resolve_corpus_path
from musicot.clap import data as D
from musicot.clap.compat import clap_module
from musicot.clap.model import ClapModel, build, load, load_pretrained, preset_spec, save
from musicot.config import ConfigError, load_config
from musicot.config import build as build_config
from musicot.distributed import threads_per_process
from musicot.metrics.correlation import pearson
from musicot.prep.common import load_tracks, load_truth, write_quality
from musicot.training import (
    LoopConfig,
    NoLearningSignal,
    cosine_schedule,
    discard_stale_state,
    seed_everything,
    train_loop,
)

log = logging.getLogger("musicot.clap")

STEP = "clap"
# Settings a saved training state may differ in and still be resumed (step counts and logging).
NOT_RESUME_KEYS = ("tag_steps", "max_steps", "eval_every", "checkpoint_every", "log_every", "threads")
TEXT_COLUMNS = {"text": "string", "kind": "string"}


@dataclass(frozen=True)
class ClapConfig:
    """The `clap` section of the config schema (defaults live there)."""

    preset: str = "tiny"
    window_s: float = 10.0
    hop_s: float = 5.0
    train_hop_s: float = 5.0
    active_rms: float = 0.01
    labels: str = "loudness"
    loudness_quantile: float = 0.9
    shift_s: float = 2.5
    gain_db: float = 3.0
    remix_prob: float = 0.5
    phrase_prob: float = 0.5
    remix_stem_gain_db: float = 0.0
    remix_cross_song: float = 0.0
    remix_eq_db: float = 0.0
    timbres: Mapping = field(default_factory=dict)  # musicot.clap.timbres reads it
    crop_s: float = 3.0
    audio_regularize: bool = False
    tag_steps: int = 400
    lock_audio: bool = True
    feature_samples: int = 2048
    anchor_weight: float = 3.0
    contrastive_batch_size: int = 64
    batch_size: int = 24
    max_steps: int = 400
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 5
    eval_every: int = 20
    checkpoint_every: int = 20
    log_every: int = 5
    pretrained: str = ""
    roberta_dir: str = ""
    threads: int = 0


# ---------------------------------------------------------------- metrics


def retrieval_metrics(
    audio: np.ndarray, captions: Sequence[str], caption_emb: Mapping[str, np.ndarray], ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Audio->text recall@k over the distinct captions of the given windows, plus chance level."""
    distinct = list(dict.fromkeys(captions))
    if not distinct:
        return {}
    text = np.stack([caption_emb[c] for c in distinct])
    sims = audio @ text.T
    truth = np.array([distinct.index(c) for c in captions])
    # rank of the true caption: how many captions score strictly higher
    rank = (sims > sims[np.arange(len(truth)), truth][:, None]).sum(axis=1)
    out = {f"recall@{k}": float((rank < k).mean()) for k in ks}
    out.update({f"chance@{k}": min(1.0, k / len(distinct)) for k in ks})
    out["n_captions"] = float(len(distinct))
    out["n_windows"] = float(len(truth))
    return out


def anchor_auc(scores: Mapping[str, np.ndarray], windows: pd.DataFrame, prefix: str = "auc_") -> dict[str, float]:
    """AUC per anchor stem of its (n_windows,) scores vs the stem being active (NaN if one class or no truth)."""
    out = {}
    for stem, values in scores.items():
        col = f"active_{stem}"
        if col not in windows:
            continue
        known = windows[col].notna().to_numpy()
        labels = windows[col][known].astype(bool).to_numpy()
        auc = roc_auc_score(labels, values[known]) if 0 < labels.sum() < len(labels) else float("nan")
        out[f"{prefix}{stem}"] = float(auc)
    return out


def volume_r(scores: Mapping[str, np.ndarray], windows: pd.DataFrame, prefix: str = "r_") -> dict[str, float]:
    """Pearson r per anchor stem of its (n_windows,) scores vs the stem's mean truth RMS per window (rms_<stem>).

    Pooled over every window with truth: the training-time view of the analyzability that
    musicot.analysis.thought reports per song set. NaN when the volume or the scores are constant.
    """
    out = {}
    for stem, values in scores.items():
        col = f"rms_{stem}"
        if col not in windows:
            continue
        volume = windows[col].to_numpy(dtype=np.float64)
        known = np.isfinite(volume)
        x, y = np.asarray(values, dtype=np.float64)[known], volume[known]
        out[f"{prefix}{stem}"] = pearson(x, y)
    return out


def window_metrics(audio: np.ndarray, windows: pd.DataFrame, text_emb: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Recall@1/@5 over the windows' captions, zero-shot AUC per anchor (+ their mean) and the Pearson r
    of each anchor's similarity with its stem's volume (+ their mean); `text_emb` has captions and anchors."""
    metrics = retrieval_metrics(audio, list(windows["caption"].astype(str)), text_emb)
    anchors = {a: audio @ text_emb[a] for a in D.ANCHORS if a in text_emb}
    metrics.update(anchor_auc(anchors, windows))
    metrics.update(volume_r(anchors, windows))
    for prefix, name in (("auc_", "auc_mean"), ("r_", "r_mean")):
        values = [v for k, v in metrics.items() if k.startswith(prefix) and k != name and math.isfinite(v)]
        metrics[name] = float(np.mean(values)) if values else float("nan")
    return metrics


def evaluate_windows(model: ClapModel, waves: np.ndarray, windows: pd.DataFrame) -> dict[str, float]:
    """Recall@1/@5 and per-stem AUC of `windows` (with their (n, samples) waveforms)."""
    if not len(windows):
        return {}
    texts = list(dict.fromkeys([*windows["caption"].astype(str), *D.ANCHORS]))
    return window_metrics(model.embed_audio(waves), windows, dict(zip(texts, model.embed_text(texts), strict=True)))


def _json_safe(value):
    """NaN/inf -> None (strict JSON), tuples -> lists, NumPy scalars -> Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# ---------------------------------------------------------------- corpus


def load_corpus(tracks_path: Path, splits: Sequence[str] | None = None) -> tuple[pd.DataFrame, dict[str, D.SongTruth]]:
    tracks = load_tracks(tracks_path, splits)
    try:
        volume = load_truth(tracks_path, "stem_volume")
    except FileNotFoundError:
        volume = pd.DataFrame(columns=["song_id", "stem", "frame", "start", "end", "rms"])
    return tracks, D.song_truths(volume[volume["song_id"].isin(tracks["song_id"])])


def _resolve(path: str, tracks_path: Path) -> str:
    """Corpus paths are relative to the repository root (two levels above results/corpus) or absolute."""
    return str(resolve_corpus_path(path, tracks_path))


def load_audio(tracks: pd.DataFrame, sample_rate: int, tracks_path: Path) -> dict[str, np.ndarray]:
    return {str(t.song_id): D.load_mono(_resolve(t.audio_path, tracks_path), sample_rate) for t in tracks.itertuples()}


def load_stem_audio(tracks: pd.DataFrame, sample_rate: int, tracks_path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Stems of every track that has a stems_dir (the built-in corpus), for remix augmentation."""
    out = {}
    for t in tracks.itertuples():
        stems_dir = str(getattr(t, "stems_dir", "") or "")
        if stems_dir:
            stems = D.load_stems(_resolve(stems_dir, tracks_path), sample_rate)
            if stems:
                out[str(t.song_id)] = stems
    return out


def window_waves(windows: pd.DataFrame, audio: Mapping[str, np.ndarray], sample_rate: int, window_s: float):
    n = round(window_s * sample_rate)
    if not len(windows):
        return np.zeros((0, n), np.float32)
    return np.stack([D.crop(audio[str(r.song_id)], float(r.start), n, sample_rate) for r in windows.itertuples()])


# ---------------------------------------------------------------- training


def make_model(cfg: ClapConfig) -> ClapModel:
    spec = preset_spec(cfg.preset, cfg.window_s, roberta_dir=cfg.roberta_dir)
    if cfg.pretrained:
        return load_pretrained(cfg.pretrained, spec)
    return build(spec)


def global_clip_loss() -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """laion's ClipLoss over the step's global batch, also when its slices sit on several processes.

    Under torchrun every process gathers the others' features (laion's own all-gather, without their
    gradients) and computes the loss of the whole batch; its gradient then reaches only its own slice.
    The shared loop averages gradients over processes, so each is scaled by the process count here:
    the sum is the one-process gradient of the doubled batch. The value (the logged loss) is unchanged.
    """
    w = distributed.world()
    clip = clap_module().ClipLoss(mlp_loss=False, cache_labels=False, rank=w.rank, world_size=w.size)

    def fn(audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        loss = clip(audio, text, scale)
        return loss if w.size == 1 else loss + (w.size - 1) * (loss - loss.detach())

    return fn


def clip_loss_fn():
    """laion's ClipLoss on the plain (non-MLP) features, as laion trains CLAP (batch: waves, tokens)."""
    clip = global_clip_loss()

    def fn(model: ClapModel, batch) -> torch.Tensor:
        waves, tokens = batch
        audio, text, _, _, scale_a, _ = model(waves, tokens)
        return clip(audio, text, scale_a)

    return fn


def locked_clip_loss_fn(anchor_weight: float = 0.0):
    """ClipLoss with the audio tower locked: batch = (cached tower embeddings, tokens[, anchor labels]).

    With `anchor_weight` > 0 a pairwise sigmoid term (SigLIP's loss, Zhai et al. 2023) is added
    on every (window, anchor word) pair: ``sigmoid(scale * cos + bias)`` should give that stem's
    label (its loudness in [0, 1], or whether it plays; see `TrainWindows`). InfoNCE alone makes
    cos(window, "drums") follow log p("drums" | window), which falls as more stems play (each is
    named less often), so anchors read density; the sigmoid
    term ties each anchor to its own stem whatever else plays. The bias is a training-only
    parameter of `ClapModel`; the saved CLAP weights are laion's alone.
    """
    clip = global_clip_loss()

    def fn(model: ClapModel, batch) -> torch.Tensor:
        feats, tokens, *rest = batch
        audio = F.normalize(model.clap.audio_projection(feats), dim=-1)
        text = F.normalize(model.clap.encode_text(tokens, device=model.device), dim=-1)
        scale = model.clap.logit_scale_a.exp()
        loss = clip(audio, text, scale)
        if anchor_weight > 0 and rest:
            labels = rest[0]
            anchors = F.normalize(model.clap.encode_text(model.tokenize(D.ANCHORS), device=model.device), dim=-1)
            logits = scale * audio @ anchors.T + model.anchor_bias
            known = torch.isfinite(labels)
            if known.any():
                loss = loss + anchor_weight * F.binary_cross_entropy_with_logits(logits[known], labels[known])
        return loss

    return fn


def tag_loss_fn(model: ClapModel, batch) -> torch.Tensor:
    """BCE of the audio tower's own PANN tagging head against the anchor stem labels (NaN labels skipped)."""
    waves, labels = batch
    probs = model.audio_tags(waves)
    known = torch.isfinite(labels)
    if not known.any():
        return probs.sum() * 0.0
    return F.binary_cross_entropy(probs[known].clamp(1e-6, 1 - 1e-6), labels[known])


def tag_auc(model: ClapModel, waves: np.ndarray, windows: pd.DataFrame) -> dict[str, float]:
    """Valid AUC (NaN when a stem is always or never active) and volume r of the tagging head per anchor stem."""
    if not len(windows):
        return {}
    with torch.no_grad():
        probs = torch.cat(
            [model.audio_tags(torch.from_numpy(waves[i : i + 16])).cpu() for i in range(0, len(waves), 16)]
        )
    scores = {s: probs[:, j].numpy() for j, s in enumerate(D.ANCHORS)}
    return {**anchor_auc(scores, windows, "tag_auc_"), **volume_r(scores, windows, "tag_r_")}


def _stage(model, params, cfg: ClapConfig, steps: int, next_batch, loss_fn, state_dir: Path, evaluate, seed: int):
    """One training stage through the shared loop: AdamW on `params`, warm-up + cosine schedule."""
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = cosine_schedule(optimizer, cfg.warmup_steps, max(1, steps))  # decays to zero
    loop = LoopConfig(steps, cfg.eval_every, cfg.checkpoint_every, cfg.log_every, seed)
    return train_loop(model, optimizer, next_batch, loss_fn, loop, state_dir, evaluate=evaluate, scheduler=scheduler)


# Batches are pure functions of (seed, stream, step), never of how many were drawn before, so a
# stage resumed at step k draws what an uninterrupted run drew there.
TAG_STREAM, CONTRASTIVE_STREAM, FEATURE_STREAM = 1, 2, 3
PERMUTE, AUGMENT = 0, 1  # sub-streams: epoch permutations, per-step augmentation


def _sampler(n: int, batch_size: int, seed: int, stream: int) -> Callable[[int], list[int]]:
    """take(step): indices of batch `step`, consecutive slices of per-epoch random permutations.

    Every item is seen once per epoch; where a batch is in the item stream follows from its
    step alone, and each epoch's permutation from its own generator.
    """
    size = min(batch_size, n)

    @lru_cache(maxsize=2)  # a batch spans at most two epochs
    def permutation(epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, stream, PERMUTE, epoch]).permutation(n)

    def take(step: int) -> list[int]:
        return [int(permutation(pos // n)[pos % n]) for pos in range(step * size, (step + 1) * size)]

    return take


def _augment_rng(seed: int, stream: int, step: int) -> np.random.Generator:
    """The generator of step `step`'s augmentation (crops, shifts, gains, remixes, phrases)."""
    return np.random.default_rng([seed, stream, AUGMENT, step])


def cache_features(model: ClapModel, pool: D.TrainWindows, n: int, seed: int, stream: int = FEATURE_STREAM) -> tuple:
    """(tower embeddings (n, embed_dim), texts, anchor labels (n, anchors)) of `n` augmented full windows.

    The audio tower runs in eval mode, as it will when embedding. Chunk c of 32 windows is
    drawn as batch c of `_sampler`, so the cache depends only on the seed and the model.
    """
    take = _sampler(len(pool), 32, seed, stream)
    feats, texts, labels = [], [], []
    model.eval()
    with torch.no_grad():
        chunk = 0
        while len(texts) < n:
            idx = take(chunk)[: n - len(texts)]
            waves, batch_texts, batch_labels = pool.batch(idx, _augment_rng(seed, stream, chunk))
            feats.append(model.tower_outputs(torch.from_numpy(waves))["embedding"])
            texts += batch_texts
            labels.append(torch.from_numpy(batch_labels))
            chunk += 1
    return torch.cat(feats).cpu(), texts, torch.cat(labels)


def learnable_steps(cfg: ClapConfig, has_labels: bool, distinct_texts: int) -> tuple[int, int, dict[str, str]]:
    """(tagging steps, contrastive steps, {stage: why skipped}) for what the train split can teach.

    The tagging stage learns stem loudness, so it needs true stems. The contrastive stage needs
    texts that differ (a batch of one repeated caption gives every gradient exactly zero) or stem
    labels for the anchor term; without either only a pretrained model (`clap.pretrained`) can be
    kept as it is, and a model trained from scratch would be random weights saved as a result.
    """
    skipped = {}
    tag_steps = cfg.tag_steps if has_labels else 0
    if cfg.tag_steps > 0 and not has_labels:
        skipped["tagging"] = "no true stems in the train split (its labels are stem loudness)"
        if cfg.lock_audio and not cfg.pretrained:
            skipped["tagging"] += (
                "; with clap.lock_audio the audio tower keeps its random initial weights "
                "(clap.lock_audio: false trains it on the captions)"
            )
    if has_labels or distinct_texts >= 2 or cfg.max_steps == 0:
        return tag_steps, cfg.max_steps, skipped
    why = f"the train windows carry {distinct_texts} distinct caption text(s) and no stem labels"
    if cfg.pretrained:
        skipped["contrastive"] = f"{why}: {cfg.pretrained} is kept as loaded"
        return tag_steps, 0, skipped
    raise NoLearningSignal(
        f"CLAP has nothing to learn: {why}. Give the songs captions (sidecar .json `caption`, or "
        "`genre` and `mood`) or set clap.pretrained to a local LAION-CLAP checkpoint; no model was written"
    )


def train(
    cfg: ClapConfig,
    tracks_path: Path,
    out_dir: Path,
    state_dir: Path | None = None,
    seed: int = 1234,
    model: ClapModel | None = None,
    timbres_path: Path | None = None,
) -> dict:
    """Train on the train split, evaluate on valid, save the model; returns the metrics written.

    `timbres_path`: the tracks.parquet of musicot.clap.timbres; its re-rendered train songs join
    the train windows (and the remix sources) beside the corpus' own.

    Two stages. (1) ``tag_steps`` of the audio tower alone on its PANN tagging head against
    how loud each anchor stem plays (``labels``; BCE) — the AudioSet tagging pre-training laion's towers start from,
    done here on the corpus because no checkpoint can be downloaded. (2) ``max_steps`` of laion's
    ClipLoss. With ``lock_audio`` (LiT: locked-image tuning, Zhai et al. 2022) stage 2 runs the
    tower once over ``feature_samples`` augmented windows and trains only the audio projection
    and the text tower on those cached embeddings: far cheaper per step, and measured here it is
    what aligns the anchor words at all (trained end to end for the same wall time, every audio
    embedding stayed within cosine 0.86 of every other and the anchors anti-correlated with
    their stems). Without ``lock_audio`` stage 2 trains everything end to end on waveforms.
    """
    started = time.perf_counter()
    if model is None:
        seed_everything(seed)  # the initial weights are part of the seeded run
        model = make_model(cfg)
    model.to(distributed.device())  # under torchrun: this process' own GPU (the model moves its inputs)
    model.audio_regularize = cfg.audio_regularize
    if min(cfg.crop_s, cfg.window_s) < model.spec.min_clip_s:
        raise ConfigError(
            f"clap.crop_s {cfg.crop_s} s is shorter than the {model.spec.preset!r} audio tower takes "
            f"({model.spec.min_clip_s:.2f} s)"
        )
    sr = model.spec.sample_rate
    tracks, truths = load_corpus(tracks_path)
    valid_w = D.build_windows(tracks[tracks["split"] == "valid"], truths, cfg.window_s, cfg.hop_s, cfg.active_rms)
    audio = load_audio(tracks[tracks["split"].isin(["train", "valid"])], sr, tracks_path)
    train_tracks = tracks[tracks["split"] == "train"]
    stems = load_stem_audio(train_tracks, sr, tracks_path) if cfg.remix_prob > 0 else {}
    if timbres_path is not None:
        variants, variant_truths = load_corpus(timbres_path, ["train"])
        audio.update(load_audio(variants, sr, timbres_path))
        stems.update(load_stem_audio(variants, sr, timbres_path) if cfg.remix_prob > 0 else {})
        truths = {**truths, **variant_truths}
        train_tracks = pd.concat([train_tracks, variants], ignore_index=True) if len(variants) else train_tracks
        log.info("clap: %d timbre variants of the train songs join the train windows", len(variants))
    windows = D.build_windows(train_tracks, truths, cfg.window_s, cfg.train_hop_s, cfg.active_rms)
    meta = {str(t.song_id): (str(t.genre or ""), str(t.mood or "")) for t in train_tracks.itertuples()}
    train_w = windows[windows["split"] == "train"]
    loudness_ref = None
    if cfg.labels == "loudness":
        train_songs = set(train_tracks["song_id"].astype(str))
        train_truths = {s: t for s, t in truths.items() if s in train_songs}
        loudness_ref = D.loudness_reference(train_truths, cfg.active_rms, cfg.loudness_quantile)
        log.info("clap: loudness labels, full level per stem %s", {k: round(v, 4) for k, v in loudness_ref.items()})
    augment = dict(
        shift_s=cfg.shift_s,
        gain_db=cfg.gain_db,
        meta=meta,
        stems=stems,
        remix_prob=cfg.remix_prob,
        loudness_ref=loudness_ref,
        stem_gain_db=cfg.remix_stem_gain_db,
        cross_song_prob=cfg.remix_cross_song,
        eq_db=cfg.remix_eq_db,
    )
    pool = D.TrainWindows(train_w, audio, truths, sr, cfg.window_s, cfg.active_rms, crop_s=cfg.crop_s, **augment)
    if not len(pool):
        raise ValueError("no train-split windows: is the corpus empty or every song in valid/reference?")
    valid_waves = window_waves(valid_w, audio, sr, cfg.window_s)
    log.info(
        "clap: %d train windows (%d songs with stems for remixing), %d valid windows, %d distinct train captions",
        len(pool),
        len(stems),
        len(valid_w),
        pool.windows["caption"].nunique(),
    )
    has_labels = any(str(song) in truths for song in train_tracks["song_id"])
    tag_steps, contrastive_steps, skipped = learnable_steps(cfg, has_labels, pool.windows["caption"].nunique())
    for stage, why in skipped.items():
        log.warning("clap: %s stage skipped: %s", stage, why)
    n_tags = int(model.spec.model_config["audio_cfg"].get("class_num", 0))
    if tag_steps > 0 and n_tags != len(D.ANCHORS):
        raise ConfigError(
            f"clap.tag_steps > 0 trains the audio tower's tagging head on the {len(D.ANCHORS)} anchor stems, "
            f"but preset {model.spec.preset!r} has {n_tags} classes (AudioSet's); set clap.tag_steps: 0"
        )
    state_dir = Path(state_dir or out_dir / "state")
    # A saved stage resumes only a run with the same seed, data and settings (step counts aside;
    # the contrastive stage also depends on how long the tagging stage ran).
    settings = {k: v for k, v in asdict(cfg).items() if k not in NOT_RESUME_KEYS}
    checksums = tracks.get("content_sha1", tracks["song_id"]).astype(str)
    data = sorted(zip(tracks["song_id"].astype(str), checksums, strict=True))
    # "batches": states saved before batches became pure functions of the step cannot resume exactly.
    run = {"seed": seed, "data": data, "clap": settings, "batches": "per-step"}
    histories, walls = {}, {}

    if tag_steps > 0:
        discard_stale_state(state_dir / "tags", run)
        take = _sampler(len(pool), cfg.batch_size, seed, TAG_STREAM)

        def tag_batch(step: int):
            waves, _, labels = pool.batch(take(step), _augment_rng(seed, TAG_STREAM, step))
            return torch.from_numpy(waves), torch.from_numpy(labels)

        params = list(model.clap.audio_branch.parameters())
        histories["tags"] = _stage(
            model,
            params,
            cfg,
            tag_steps,
            tag_batch,
            tag_loss_fn,
            state_dir / "tags",
            lambda m: tag_auc(m, valid_waves, valid_w),
            seed,
        )
        walls["tags"] = histories["tags"]["wall_s"]

    evaluate = lambda m: evaluate_windows(m, valid_waves, valid_w)  # noqa: E731
    discard_stale_state(state_dir / "contrastive", {**run, "tag_steps": tag_steps})
    if cfg.lock_audio:
        t0 = time.perf_counter()
        full = D.TrainWindows(
            train_w, audio, truths, sr, cfg.window_s, cfg.active_rms, phrase_prob=cfg.phrase_prob, **augment
        )
        feats, texts, labels = cache_features(model, full, cfg.feature_samples, seed)
        walls["features"] = time.perf_counter() - t0
        take = _sampler(len(texts), cfg.contrastive_batch_size, seed, CONTRASTIVE_STREAM)

        def clip_batch(step: int):
            idx = take(step)
            return feats[idx], model.tokenize([texts[i] for i in idx]), labels[idx]

        params = [p for n, p in model.clap.named_parameters() if not n.startswith("audio_branch.")]
        params.append(model.anchor_bias)
        loss_fn = locked_clip_loss_fn(cfg.anchor_weight)
    else:
        pool.phrase_prob = cfg.phrase_prob
        take = _sampler(len(pool), cfg.batch_size, seed, CONTRASTIVE_STREAM)

        def clip_batch(step: int):
            waves, texts, _ = pool.batch(take(step), _augment_rng(seed, CONTRASTIVE_STREAM, step))
            return torch.from_numpy(waves), model.tokenize(texts)

        params = list(model.parameters())
        loss_fn = clip_loss_fn()
    histories["contrastive"] = _stage(
        model, params, cfg, contrastive_steps, clip_batch, loss_fn, state_dir / "contrastive", evaluate, seed
    )
    walls["contrastive"] = histories["contrastive"]["wall_s"]
    hist = histories["contrastive"]
    final = hist["eval"][-1][1] if hist["eval"] else evaluate_windows(model, valid_waves, valid_w)
    if "tags" in histories and histories["tags"]["eval"]:
        final = {**final, **histories["tags"]["eval"][-1][1]}
    metrics = {
        "valid": final,
        "history": histories,
        "train_windows": len(pool),
        "valid_windows": len(valid_w),
        "train_wall_s": sum(walls.values()),
        "stage_wall_s": walls,
        "skipped_stages": skipped,
        "total_wall_s": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in model.parameters()),
        "loudness_reference": loudness_ref,
        "config": asdict(cfg),
        "seed": seed,
    }
    save(model.cpu(), out_dir, extra={"clap": asdict(cfg)})
    (Path(out_dir) / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2))
    return metrics


# ---------------------------------------------------------------- embeddings


def text_table(captions: Sequence[str]) -> pd.DataFrame:
    """Anchors, every tag of the vocabulary (kind tag:<family>) and the distinct captions, in that order."""
    from musicot.prep.tags import load_vocabulary

    rows = [dict(text=a, kind="anchor") for a in D.ANCHORS]
    rows += [dict(text=t, kind=f"tag:{family}") for family, tags in load_vocabulary().items() for t in tags]
    rows += [dict(text=c, kind="caption") for c in dict.fromkeys(captions)]
    return pd.DataFrame(rows).astype(TEXT_COLUMNS)


def embed_windows(
    model: ClapModel, tracks: pd.DataFrame, windows: pd.DataFrame, tracks_path: Path, window_s: float
) -> np.ndarray:
    """(N, joint) embeddings of `windows` (their row order), one song's audio in memory at a time."""
    sr = model.spec.sample_rate
    chunks = []
    for song_id, group in windows.groupby("song_id", sort=False):
        track = tracks[tracks["song_id"] == song_id].iloc[0]
        mono = D.load_mono(_resolve(track["audio_path"], tracks_path), sr)
        chunks.append(model.embed_audio(window_waves(group, {str(song_id): mono}, sr, window_s)))
    return np.concatenate(chunks) if chunks else np.zeros((0, model.joint_dim), np.float32)


def embed(cfg: ClapConfig, tracks_path: Path, model_dir: Path, out_dir: Path) -> dict:
    """Write windows.parquet/.npy, text.parquet/.npy, metrics.json and quality.csv; return the metrics."""
    started = time.perf_counter()
    model = load(model_dir).to(distributed.device())  # the job's GPU when it has one (outputs come back as NumPy)
    tracks, truths = load_corpus(tracks_path)
    windows = D.build_windows(tracks, truths, cfg.window_s, cfg.hop_s, cfg.active_rms)
    audio = embed_windows(model, tracks, windows, tracks_path, cfg.window_s)
    texts = text_table(windows["caption"].astype(str))
    text_emb = model.embed_text(list(texts["text"]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    windows[list(D.WINDOW_COLUMNS)].to_parquet(out_dir / "windows.parquet", index=False)
    np.save(out_dir / "windows.npy", audio.astype(np.float32))
    texts.to_parquet(out_dir / "text.parquet", index=False)
    np.save(out_dir / "text.npy", text_emb.astype(np.float32))

    valid = (windows["split"] == "valid").to_numpy()
    metrics = window_metrics(audio[valid], windows[valid], dict(zip(texts["text"], text_emb, strict=False)))
    metrics["wall_s"] = time.perf_counter() - started
    (out_dir / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2))
    n = int(valid.sum())
    write_quality(
        [dict(step=STEP, metric=k, value=v, n=n, note="valid split") for k, v in metrics.items() if k != "wall_s"],
        out_dir / "quality.csv",
    )
    return metrics


# ---------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("train", "embed"):
        s = sub.add_parser(name)
        s.add_argument("--config", required=True, help="config YAML path or inline JSON")
        s.add_argument("--tracks", type=Path, required=True)
        s.add_argument("--out", type=Path, required=True)
        s.add_argument("--threads", type=int, default=None, help="torch threads (overrides clap.threads)")
        if name == "train":
            s.add_argument("--state-dir", type=Path, default=None, help="checkpoint folder (default OUT/state)")
            s.add_argument("--timbres", type=Path, default=None, help="tracks.parquet of musicot.clap.timbres")
        else:
            s.add_argument("--model", type=Path, required=True, help="folder written by `train`")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    logging.basicConfig(level=distributed.log_level(), format="%(levelname)s %(name)s: %(message)s")
    config = load_config(a.config)
    cfg = build_config(ClapConfig, config["clap"])
    threads = a.threads if a.threads is not None else cfg.threads
    if threads:
        torch.set_num_threads(threads_per_process(threads))
    if a.command == "train":
        metrics = train(cfg, a.tracks, a.out, a.state_dir, seed=config["seed"], timbres_path=a.timbres)
        print(json.dumps(_json_safe({"valid": metrics["valid"], "train_wall_s": metrics["train_wall_s"]}), indent=2))
    else:
        print(json.dumps(_json_safe(embed(cfg, a.tracks, a.model, a.out)), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
