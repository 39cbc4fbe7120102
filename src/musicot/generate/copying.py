"""Does music referencing copy? Referencing by thought against continuing a song's own tokens.

    python -m musicot.generate.copying --config CFG --lm results/lm/musicot/model --data results/lm/data \
        --embeddings results/clap/embeddings/windows.npy --out results/metrics/copying.csv

The paper claims that giving the LM a reference song's thought (its arrangement, in CLAP space)
copies less of that song than continuing the song's audio tokens, the usual way to condition an LM
on a reference. For each song of `generate.copy.split`, with the song's own conditions (tags, lyrics,
its middle CLAP window) and the `musicot` LM's sampling values:

* referencing: the song's thought is given, `lm.sample.duration_s` seconds of audio tokens sampled;
* continuation: the song's first `generate.copy.prefix_s` seconds of tokens are given (after a sampled
  thought), the rest of the `lm.sample.duration_s` seconds sampled.

Only the sampled tokens are compared with the song's whole token sequence: the longest run of
consecutive tokens they share (longest common substring) and the fraction of the sampled
`generate.copy.ngram`-grams that occur anywhere in the song. Writes the per-song table
(`<out stem>_songs.csv`) and the summary (`--out`): mean and bootstrap CI per mode and of the paired
difference (continuation minus referencing).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicot.config import load_config

log = logging.getLogger("musicot.generate")

MODES = ("referencing", "continuation")
METRICS = ("longest_run", "ngram_overlap")
SONG_COLUMNS = ["song_id", "mode", "n_generated", "longest_run", "ngram_overlap"]
SUMMARY_COLUMNS = ["mode", "metric", "mean", "ci_low", "ci_high", "n_songs", "note"]


def longest_common_run(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest run of consecutive tokens found in both `a` and `b` (longest common substring)."""
    a, b = np.asarray(a), np.asarray(b)
    if not len(a) or not len(b):
        return 0
    best, previous = 0, np.zeros(len(b) + 1, dtype=np.int64)
    for token in a:
        current = np.zeros_like(previous)
        # run ending at (i, j) = run ending at (i-1, j-1) + 1 where the tokens match
        current[1:] = np.where(b == token, previous[:-1] + 1, 0)
        best = max(best, int(current.max()))
        previous = current
    return best


def ngram_overlap(generated: Sequence[int], reference: Sequence[int], n: int) -> float:
    """Fraction of `generated`'s n-grams (by position) that occur somewhere in `reference`; NaN if it has none."""
    g, r = [tuple(map(int, x)) for x in (generated, reference)]
    grams = [g[i : i + n] for i in range(len(g) - n + 1)]
    if not grams:
        return float("nan")
    known = {r[i : i + n] for i in range(len(r) - n + 1)}
    return sum(gram in known for gram in grams) / len(grams)


def bootstrap_mean(values: np.ndarray, resamples: int, rng: np.random.Generator, confidence: float = 0.95):
    """(mean, low, high) of the finite `values`: `musicot.lm.evaluate.bootstrap`'s percentile interval."""
    from musicot.lm.evaluate import bootstrap

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    return (float(values.mean()), *bootstrap(values, resamples, confidence, rng))


def song_rows(song_id: str, mode: str, generated: np.ndarray, reference: np.ndarray, n: int) -> dict:
    return dict(
        song_id=song_id,
        mode=mode,
        n_generated=len(generated),
        longest_run=longest_common_run(generated, reference),
        ngram_overlap=ngram_overlap(generated, reference, n),
    )


def summarise(per_song: pd.DataFrame, resamples: int, seed: int) -> pd.DataFrame:
    """Mean and CI per mode and metric, and of the paired difference continuation - referencing."""
    rng = np.random.default_rng([seed, 13])
    rows = []
    for metric in METRICS:
        wide = per_song.pivot(index="song_id", columns="mode", values=metric)
        for mode in MODES:
            mean, lo, hi = bootstrap_mean(wide[mode].to_numpy(), resamples, rng)
            rows.append(dict(mode=mode, metric=metric, mean=mean, ci_low=lo, ci_high=hi, n_songs=len(wide), note=""))
        diff = (wide["continuation"] - wide["referencing"]).to_numpy()
        mean, lo, hi = bootstrap_mean(diff, resamples, rng)
        note = "paired over songs; > 0: continuation copies more"
        rows.append(
            dict(
                mode="continuation - referencing",
                metric=metric,
                mean=mean,
                ci_low=lo,
                ci_high=hi,
                n_songs=len(wide),
                note=note,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def run(config: Mapping, lm_dir: Path, data_dir: Path, embeddings_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from musicot.generate.run import prompt_seed
    from musicot.lm.model import load_lm
    from musicot.lm.sample import Prompt, SampleConfig, sample
    from musicot.lm.sequence import audio_token_count
    from musicot.lm.train import load_songs

    copy, sample_cfg = config["generate"]["copy"], config["lm"]["sample"]
    duration, prefix_s = float(sample_cfg["duration_s"]), float(copy["prefix_s"])
    if prefix_s >= duration:
        raise ValueError(f"generate.copy.prefix_s ({prefix_s}) must be shorter than lm.sample.duration_s ({duration})")
    model = load_lm(lm_dir).eval()
    if not model.uses_thought:
        raise ValueError(f"{lm_dir} holds the {model.system!r} LM: referencing needs the thought")
    songs = [s for s in load_songs(data_dir, model.vocab.rvq_levels) if s.split == copy["split"]]
    if not songs:
        raise ValueError(f"no song of split {copy['split']!r} in {data_dir}: nothing to reference")
    embeddings = np.load(embeddings_path).astype(np.float32)
    n_audio, n_prefix = audio_token_count(duration, config), audio_token_count(prefix_s, config)
    cfg, seed = SampleConfig.from_config(sample_cfg), int(config["seed"])
    prompts, generators = [], []
    for k, song in enumerate(songs):
        clap = embeddings[int(song.clap_rows[len(song.clap_rows) // 2])]
        base = dict(
            clap=clap, tag_ids=song.tag_ids, lyric_ids=song.lyric_ids, n_frames=len(song.thought), n_audio=n_audio
        )
        prompts += [Prompt(**base, thought=song.thought), Prompt(**base, audio_prefix=song.tokens[:n_prefix])]
        generators += [torch.Generator().manual_seed(prompt_seed(seed, 2 * k + m)) for m in range(2)]
    batch = int(sample_cfg["batch_size"])
    drawn = []
    for i in range(0, len(prompts), batch):
        drawn += sample(model, prompts[i : i + batch], cfg, generators[i : i + batch])
    rows = []
    for k, song in enumerate(songs):
        rows.append(song_rows(song.song_id, "referencing", drawn[2 * k].audio, song.tokens, copy["ngram"]))
        rows.append(
            song_rows(song.song_id, "continuation", drawn[2 * k + 1].audio[n_prefix:], song.tokens, copy["ngram"])
        )
    per_song = pd.DataFrame(rows, columns=SONG_COLUMNS)
    return per_song, summarise(per_song, int(copy["bootstrap"]), seed)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--lm", type=Path, required=True, help="the musicot LM folder")
    parser.add_argument("--data", type=Path, required=True, help="results/lm/data (songs.parquet)")
    parser.add_argument("--embeddings", type=Path, required=True, help="CLAP windows.npy (the songs' CLAP prefix)")
    parser.add_argument("--out", type=Path, required=True, help="summary csv; the per-song table goes beside it")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    per_song, summary = run(load_config(args.config), args.lm, args.data, args.embeddings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    summary.to_csv(args.out, index=False)
    per_song.to_csv(args.out.with_name(f"{args.out.stem}_songs.csv"), index=False)
    log.info("copying:\n%s", summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
