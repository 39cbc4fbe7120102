"""Train one semantic LM: `musicot` (conditions, thought, audio) or `base` (conditions, audio).

    python -m musicot.lm.train --config CFG --system musicot --data results/lm/data \
        --embeddings results/clap/embeddings/windows.npy --tokenizer results/lm/tokenizer \
        --out results/lm/musicot/model --state results/lm/musicot/state

Both systems read the same songs, draw the same batches (songs, CLAP windows, condition dropout:
pure functions of seed and step) and differ only in whether the thought is in the sequence.
Each step's CLAP condition is the audio embedding of one randomly chosen window of the song
(Eq. 3). Writes `save_lm` + the tokenizer into --out and `metrics.json` (history, final losses on
thought and audio tokens for the train and valid splits, parameters, wall time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from musicot import distributed
from musicot.config import ConfigError, load_config
from musicot.lm.model import MusicLM, save_lm, size_from_config
from musicot.lm.sequence import IGNORE, PART_AUDIO, PART_THOUGHT, Example, audio_token_count, example, pad_batch
from musicot.lm.vocab import Vocab
from musicot.training import LoopConfig, cosine_schedule, discard_stale_state, train_loop

log = logging.getLogger("musicot.lm.train")

SYSTEMS = ("musicot", "base")
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Song:
    """One song as the LM reads it."""

    song_id: str
    split: str
    tag_ids: list[int]
    lyric_ids: list[int]
    thought: np.ndarray  # (M, L)
    clap_rows: np.ndarray
    tokens: np.ndarray  # all of the song's semantic tokens


def load_songs(data_dir: Path, levels: int) -> list[Song]:
    table = pd.read_parquet(Path(data_dir) / "songs.parquet")
    songs = []
    for r in table.itertuples():
        thought = np.asarray(r.thought, dtype=np.int64).reshape(int(r.n_frames), levels)
        songs.append(
            Song(
                r.song_id,
                r.split,
                list(map(int, r.tag_ids)),
                list(map(int, r.lyric_ids)),
                thought,
                np.asarray(r.clap_rows, dtype=np.int64),
                np.load(r.tokens).astype(np.int64),
            )
        )
    return songs


def draw(song: Song, system: str, vocab: Vocab, drop: dict, max_audio: int, rng: np.random.Generator):
    """One training sequence of `song` with condition dropout drawn from `rng`, and its CLAP row.

    `all` drops every condition (the unconditional thought); `audio_uncond` also drops the
    thought (the unconditional audio stream); otherwise each condition drops on its own.
    """
    u = rng.random(5)
    thought = song.thought if system == "musicot" else None
    if u[0] < drop["audio_uncond"]:
        tags, lyrics, keep_clap, thought = [], [], False, None
    elif u[1] < drop["all"]:
        tags, lyrics, keep_clap = [], [], False
    else:
        keep_clap = bool(u[2] >= drop["clap"])
        tags = [] if u[3] < drop["tags"] else song.tag_ids
        lyrics = [] if u[4] < drop["lyrics"] else song.lyric_ids
    row = int(rng.choice(song.clap_rows))
    audio = song.tokens[:max_audio]
    return example(vocab, tags, lyrics, thought, audio, keep_clap, end=len(song.tokens) <= max_audio), row


def evaluation_example(song: Song, system: str, vocab: Vocab, max_audio: int, thought: np.ndarray | None = None):
    """All conditions kept; the CLAP window is the song's middle one; `thought` replaces the song's own."""
    own = song.thought if thought is None else thought
    ex = example(
        vocab,
        song.tag_ids,
        song.lyric_ids,
        own if system == "musicot" else None,
        song.tokens[:max_audio],
        True,
        end=len(song.tokens) <= max_audio,
    )
    return ex, int(song.clap_rows[len(song.clap_rows) // 2])


def to_device(batch: dict, clap: np.ndarray, device: torch.device) -> dict:
    out = {k: torch.as_tensor(v, device=device) for k, v in batch.items()}
    out["clap"] = torch.as_tensor(clap, dtype=torch.float32, device=device)
    return out


def collate(examples: list[Example], rows: list[int], embeddings: np.ndarray, vocab: Vocab, device) -> dict:
    return to_device(pad_batch(examples, vocab.special("<pad>")), embeddings[rows], device)


def logits_of(model: MusicLM, batch: dict) -> torch.Tensor:
    return model(batch["ids"], batch["clap"], batch["keep_clap"], attention_mask=batch["mask"]).logits


def lm_loss(model: MusicLM, batch: dict) -> torch.Tensor:
    """Mean next-token cross-entropy over thought and audio labels."""
    logits = logits_of(model, batch)
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=IGNORE
    )


def token_nll(model: MusicLM, batch: dict) -> torch.Tensor:
    """(B, T) NLL of each label (0 where the label is IGNORE)."""
    logits = logits_of(model, batch).float()
    nll = F.cross_entropy(logits.transpose(1, 2), batch["labels"].clamp_min(0), reduction="none")
    return nll * (batch["labels"] != IGNORE)


def part_losses(model: MusicLM, batches: list[dict]) -> dict[str, float]:
    """Mean NLL per token on thought and on audio labels over `batches` (no grad)."""
    sums = {PART_THOUGHT: 0.0, PART_AUDIO: 0.0}
    counts = {PART_THOUGHT: 0, PART_AUDIO: 0}
    with torch.no_grad():
        for batch in batches:
            nll = token_nll(model, batch)
            for part in sums:
                at = (batch["parts"] == part) & (batch["labels"] != IGNORE)
                sums[part] += float(nll[at].sum())
                counts[part] += int(at.sum())
    out = {"audio_loss": sums[PART_AUDIO] / max(counts[PART_AUDIO], 1)}
    if counts[PART_THOUGHT]:
        out["thought_loss"] = sums[PART_THOUGHT] / counts[PART_THOUGHT]
    return out


def eval_batches(songs: list[Song], system: str, vocab: Vocab, max_audio: int, embeddings, device, size: int):
    pairs = [evaluation_example(s, system, vocab, max_audio) for s in songs]
    return [
        collate([p[0] for p in pairs[i : i + size]], [p[1] for p in pairs[i : i + size]], embeddings, vocab, device)
        for i in range(0, len(pairs), size)
    ]


def data_checksum(data_dir: Path, embeddings: np.ndarray) -> str:
    """What the saved state must agree with: the song table's content and the CLAP embeddings."""
    h = hashlib.sha1(pd.read_parquet(Path(data_dir) / "songs.parquet").to_json().encode())
    h.update(np.ascontiguousarray(embeddings).tobytes())
    return h.hexdigest()


def train(config: dict, system: str, data_dir: Path, embeddings_path: Path, out: Path, state: Path) -> dict:
    if system not in SYSTEMS:
        raise ConfigError(f"unknown system {system!r}: one of {SYSTEMS}")
    lm, tcfg = config["lm"], config["lm"]["train"]
    vocab = Vocab.from_json(json.loads((Path(data_dir) / "vocab.json").read_text()))
    songs = load_songs(data_dir, vocab.rvq_levels)
    embeddings = np.load(embeddings_path).astype(np.float32)
    train_songs = [s for s in songs if s.split == "train"]
    valid_songs = [s for s in songs if s.split == "valid"]
    if not train_songs:
        raise ConfigError(f"{data_dir}: no train-split song to train the LM on")
    max_audio = audio_token_count(lm["max_audio_s"], config)
    device = distributed.device()  # under torchrun: this process' own GPU
    if tcfg["threads"]:
        torch.set_num_threads(distributed.threads_per_process(tcfg["threads"]))
    seed = int(config["seed"])
    torch.manual_seed(seed)  # the same initial weights for both systems
    model = MusicLM.build(size_from_config(lm["model"]), vocab, embeddings.shape[1], system).to(device)
    longest = max(len(evaluation_example(s, system, vocab, max_audio)[0].ids) for s in songs)
    if longest > lm["model"]["max_positions"]:
        raise ConfigError(
            f"lm.model.max_positions {lm['model']['max_positions']} < the longest sequence ({longest} tokens): "
            "raise it or lower lm.max_audio_s / lm.max_lyric_tokens"
        )
    if tcfg["gradient_checkpointing"]:
        model.llama.gradient_checkpointing_enable()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    rest = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": tcfg["weight_decay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=tcfg["lr"],
        betas=(0.9, 0.95),
    )
    scheduler = cosine_schedule(optimizer, tcfg["warmup"], tcfg["steps"], floor=0.1)  # decays to a tenth
    loop = LoopConfig(
        max_steps=tcfg["steps"],
        eval_every=tcfg["eval_every"],
        checkpoint_every=tcfg["checkpoint_every"],
        log_every=tcfg["log_every"],
        seed=seed,
        grad_accum=tcfg["grad_accum"],
        clip_norm=1.0,
        autocast="bf16" if tcfg["bf16"] else "",
    )
    run = {
        "seed": seed,
        "system": system,
        "lm": {k: lm[k] for k in ("model", "max_audio_s", "dropout")},
        # steps included: the cosine schedule spans them, so another count is another run.
        "train": {
            k: v
            for k, v in tcfg.items()
            if k not in ("threads", "eval_every", "log_every", "gradient_checkpointing")  # memory, not weights
        },
        "data": data_checksum(data_dir, embeddings),
        "batches": "per-step",
    }
    discard_stale_state(state, run)

    def micro_batch(step: int, micro: int) -> dict:
        # Both systems draw the same songs, windows and dropout at each step: only the thought differs.
        rng = np.random.default_rng([seed, step, micro])
        picks = rng.integers(0, len(train_songs), tcfg["batch_size"])
        pairs = [draw(train_songs[i], system, vocab, lm["dropout"], max_audio, rng) for i in picks]
        return collate([p[0] for p in pairs], [p[1] for p in pairs], embeddings, vocab, device)

    def next_batch(step: int):
        if tcfg["grad_accum"] == 1:
            return micro_batch(step, 0)
        return [micro_batch(step, m) for m in range(tcfg["grad_accum"])]

    valid_batches = eval_batches(valid_songs, system, vocab, max_audio, embeddings, device, tcfg["batch_size"])
    train_eval = eval_batches(
        train_songs[: len(valid_songs) or 8], system, vocab, max_audio, embeddings, device, tcfg["batch_size"]
    )

    def evaluate(m: MusicLM) -> dict[str, float]:
        return {f"valid_{k}": v for k, v in part_losses(m, valid_batches).items()} if valid_batches else {}

    history = train_loop(model, optimizer, next_batch, lm_loss, loop, state, evaluate=evaluate, scheduler=scheduler)
    model.eval()
    metrics = {
        "system": system,
        "n_params": model.n_params(),
        "songs": {split: sum(s.split == split for s in songs) for split in sorted({s.split for s in songs})},
        "max_audio_tokens": max_audio,
        "final": {
            **{f"train_{k}": v for k, v in part_losses(model, train_eval).items()},
            **(history["eval"][-1][1] if history["eval"] else {}),
        },
        "history": history,
        "train_wall_s": history["wall_s"],
    }
    save_lm(model.cpu(), out)
    (Path(out) / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.info("%s: %s", system, " ".join(f"{k}={v:.4f}" for k, v in metrics["final"].items()))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--data", type=Path, required=True, help="results/lm/data")
    parser.add_argument("--embeddings", type=Path, required=True, help="CLAP windows.npy")
    parser.add_argument("--tokenizer", type=Path, required=True, help="folder of tokenizer.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (overrides lm.train.threads)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=distributed.log_level(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from transformers import PreTrainedTokenizerFast

    config = load_config(args.config)
    if args.threads is not None:  # the job's reservation, so that jobs side by side do not fight for cores
        config["lm"]["train"]["threads"] = args.threads
    train(config, args.system, args.data, args.embeddings, args.out, args.state)
    PreTrainedTokenizerFast.from_pretrained(args.tokenizer).save_pretrained(args.out)


if __name__ == "__main__":
    main()
