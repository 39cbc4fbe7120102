"""Does the thought carry information? Audio-token NLL of held-out songs under three conditions.

    python -m musicot.lm.evaluate --config CFG --data results/lm/data \
        --embeddings results/clap/embeddings/windows.npy --musicot results/lm/musicot/model \
        --base results/lm/base/model --out results/lm/nll.csv

For each song of `lm.eval.splits`: the mean NLL per audio token of the `musicot` LM given the
song's true thought, given the thought of another song of the same splits (`lm.eval.shuffles`
derangements, averaged), and of the `base` LM (no thought). Songs are the unit: means over songs
with percentile-bootstrap intervals, plus the paired differences (shuffled - true, base - true),
whose interval excluding 0 is the claim. Writes the csv (quantity, mean, ci_low, ci_high, n_songs,
n_tokens) and a per-song parquet beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicot.config import load_config
from musicot.lm.model import MusicLM, load_lm
from musicot.lm.sequence import IGNORE, PART_AUDIO, audio_token_count
from musicot.lm.train import Song, collate, evaluation_example, load_songs, token_nll

log = logging.getLogger("musicot.lm.evaluate")


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of range(n) without fixed points (n >= 2)."""
    if n < 2:
        raise ValueError("a shuffled thought needs at least two songs")
    while True:
        perm = rng.permutation(n)
        if (perm != np.arange(n)).all():
            return perm


def audio_nll(model: MusicLM, songs: list[Song], thoughts: list[np.ndarray | None], embeddings, max_audio, batch):
    """Per song (mean NLL per audio token, audio token count) given `thoughts` (None: the song's own)."""
    out = []
    device = next(model.parameters()).device
    for i in range(0, len(songs), batch):
        pairs = [
            evaluation_example(s, model.system, model.vocab, max_audio, t)
            for s, t in zip(songs[i : i + batch], thoughts[i : i + batch], strict=True)
        ]
        b = collate([p[0] for p in pairs], [p[1] for p in pairs], embeddings, model.vocab, device)
        with torch.no_grad():
            nll = token_nll(model, b)
        at = (b["parts"] == PART_AUDIO) & (b["labels"] != IGNORE)
        out += [(float(nll[r][at[r]].mean()), int(at[r].sum())) for r in range(len(pairs))]
    return out


def bootstrap(values: np.ndarray, n: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean of `values` over `n` resamples."""
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def evaluate(
    config: dict, data: Path, embeddings_path: Path, musicot: Path, base: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    lm, ecfg = config["lm"], config["lm"]["eval"]
    model_c, model_b = load_lm(musicot), load_lm(base)
    songs = [s for s in load_songs(data, model_c.vocab.rvq_levels) if s.split in ecfg["splits"]]
    if len(songs) < 2:
        # A small corpus can hold out fewer than two songs: the comparison is then absent, said in the table.
        why = f"{len(songs)} song(s) in splits {', '.join(ecfg['splits'])}: another song's thought needs two or more"
        log.warning("thought NLL comparison absent: %s", why)
        return pd.DataFrame([dict(quantity="absent", n_songs=len(songs), note=why)]), pd.DataFrame()
    embeddings = np.load(embeddings_path).astype(np.float32)
    max_audio, batch = audio_token_count(lm["max_audio_s"], config), lm["train"]["batch_size"]
    rng = np.random.default_rng([int(config["seed"]), 7])
    true = audio_nll(model_c, songs, [None] * len(songs), embeddings, max_audio, batch)
    shuffled = []
    for _ in range(ecfg["shuffles"]):
        perm = derangement(len(songs), rng)
        shuffled.append(audio_nll(model_c, songs, [songs[j].thought for j in perm], embeddings, max_audio, batch))
    base_nll = audio_nll(model_b, songs, [None] * len(songs), embeddings, max_audio, batch)
    per_song = pd.DataFrame(
        {
            "song_id": [s.song_id for s in songs],
            "split": [s.split for s in songs],
            "n_tokens": [n for _, n in true],
            "true_thought": [v for v, _ in true],
            "shuffled_thought": np.mean([[v for v, _ in run] for run in shuffled], axis=0),
            "base": [v for v, _ in base_nll],
        }
    )
    per_song["shuffled_minus_true"] = per_song["shuffled_thought"] - per_song["true_thought"]
    per_song["base_minus_true"] = per_song["base"] - per_song["true_thought"]
    rows = []
    for name in ("true_thought", "shuffled_thought", "base", "shuffled_minus_true", "base_minus_true"):
        values = per_song[name].to_numpy()
        lo, hi = bootstrap(values, ecfg["bootstrap"], ecfg["confidence"], rng)
        rows.append(
            dict(
                quantity=name,
                mean=float(values.mean()),
                ci_low=lo,
                ci_high=hi,
                n_songs=len(values),
                n_tokens=int(per_song["n_tokens"].sum()),
                confidence=ecfg["confidence"],
            )
        )
    return pd.DataFrame(rows), per_song


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    for name in ("data", "embeddings", "musicot", "base", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    table, per_song = evaluate(load_config(args.config), args.data, args.embeddings, args.musicot, args.base)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    per_song.to_parquet(args.out.with_suffix(".parquet"), index=False)
    log.info("audio NLL per token:\n%s", table.to_string(index=False))
    (args.out.with_suffix(".json")).write_text(json.dumps(table.to_dict("records"), indent=2))


if __name__ == "__main__":
    main()
