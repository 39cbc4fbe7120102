"""Tokens per second of the cached, batched sampler against the naive one, on one LM in one run.

    python -m musicot.lm.bench --config config.yaml --model results/lm/musicot/model \
        --out results/benchmarks/lm_sampler.csv [--embeddings results/clap/embeddings/text.npy]
    python -m musicot.lm.bench --config config.yaml --random-model --out /tmp/lm_sampler.csv

Prompts are shaped like the real ones (CLAP vector, `--condition-tokens` text ids, `--frames`
thought frames, `lm.sample.duration_s` of audio tokens, the generation stage's length) but their content is random: with
constrained decoding the work per token does not depend on it. CLAP vectors come from
`--embeddings` (an (N, clap_dim) .npy) when given. `--random-model` builds an untrained LM of the
`lm.model` shape. Each sampler runs at batch 1 and at `lm.sample.batch_size` after a short
warm-up; tokens are the sampled ones (thought + audio) summed over the batch. Writes the csv and a
markdown twin (.md beside it).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicot.config import load_config
from musicot.lm.model import MusicLM, load_lm, size_from_config
from musicot.lm.sample import Prompt, SampleConfig, sample, sample_naive
from musicot.lm.sequence import audio_token_count
from musicot.lm.vocab import Vocab

SAMPLERS = {"naive": sample_naive, "cached": sample}
COLUMNS = ["sampler", "batch", "tokens", "seconds", "tokens_per_s", "speedup_vs_naive_b1"]


def random_model(config: dict, n_semantic: int, clap_dim: int, system: str) -> MusicLM:
    """An untrained LM of the configured shape over the configured vocabulary sizes."""
    vocab = Vocab(
        n_text=config["lm"]["tokenizer"]["vocab_size"],
        rvq_levels=config["rvq"]["levels"],
        rvq_size=config["rvq"]["codebook_size"],
        n_semantic=n_semantic,
    )
    torch.manual_seed(config["seed"])
    return MusicLM.build(size_from_config(config["lm"]["model"]), vocab, clap_dim, system).eval()


def bench_prompts(
    model: MusicLM, n: int, condition_tokens: int, frames: int, audio_tokens: int, claps: np.ndarray | None, seed: int
) -> list[Prompt]:
    rng = np.random.default_rng(seed)
    prompts = []
    for k in range(n):
        clap = claps[k % len(claps)] if claps is not None else rng.standard_normal(model.clap_dim)
        text = rng.integers(0, model.vocab.n_text, condition_tokens).tolist()
        n_tags = condition_tokens // 5
        prompts.append(Prompt(clap.astype(np.float32), text[:n_tags], text[n_tags:], frames, audio_tokens))
    return prompts


def time_sampler(name: str, model: MusicLM, prompts: list[Prompt], cfg: SampleConfig, seed: int) -> dict:
    generators = [torch.Generator().manual_seed(seed + k) for k in range(len(prompts))]
    start = time.perf_counter()
    results = SAMPLERS[name](model, prompts, cfg, generators)
    seconds = time.perf_counter() - start
    n = sum(r.audio.size + (0 if r.thought is None else r.thought.size) for r in results)
    return dict(sampler=name, batch=len(prompts), tokens=n, seconds=seconds, tokens_per_s=n / seconds)


def run(
    model: MusicLM, cfg: SampleConfig, batch_size: int, prompt_args: dict, seed: int, naive_batch: bool = True
) -> pd.DataFrame:
    """One row per (sampler, batch); speedups relative to the naive sampler at batch 1."""
    warm = bench_prompts(model, 1, **{**prompt_args, "audio_tokens": 2}, seed=seed)
    for name in SAMPLERS:
        time_sampler(name, model, warm, cfg, seed)
    rows = []
    for name in SAMPLERS:
        for batch in sorted({1, batch_size}):
            if name == "naive" and batch > 1 and not naive_batch:
                continue
            rows.append(time_sampler(name, model, bench_prompts(model, batch, **prompt_args, seed=seed), cfg, seed))
    table = pd.DataFrame(rows)
    base = table.loc[(table["sampler"] == "naive") & (table["batch"] == 1), "tokens_per_s"].iloc[0]
    table["speedup_vs_naive_b1"] = table["tokens_per_s"] / base
    return table[COLUMNS]


def write(table: pd.DataFrame, out: Path, caption: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    out.with_suffix(".md").write_text(f"{caption}\n\n{table.round(3).to_markdown(index=False)}\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config YAML path or inline JSON (lm.sample, lm.model, rvq)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", type=Path, help="LM folder written by save_lm")
    which.add_argument("--random-model", action="store_true", help="untrained LM of the lm.model shape")
    p.add_argument("--embeddings", type=Path, help="(N, clap_dim) .npy of CLAP embeddings for the prompts")
    p.add_argument("--out", type=Path, required=True, help="csv path; the markdown twin is written beside it")
    p.add_argument("--variant", help="lm.sample.variants entry to time (default: the base sampling values)")
    p.add_argument("--condition-tokens", type=int, default=100, help="tag + lyric subwords per prompt")
    p.add_argument("--frames", type=int, default=5, help="thought frames M per prompt")
    p.add_argument("--audio-tokens", type=int, help="audio tokens per prompt (default lm.sample.duration_s at 25 Hz)")
    p.add_argument("--batch-size", type=int, help="the batched run's size (default lm.sample.batch_size)")
    p.add_argument("--no-naive-batch", action="store_true", help="time the naive sampler at batch 1 only")
    p.add_argument("--system", choices=["musicot", "base"], default="musicot", help="--random-model: with thought?")
    p.add_argument("--n-semantic", type=int, default=512, help="--random-model: semantic vocabulary size")
    p.add_argument("--clap-dim", type=int, default=128, help="--random-model: CLAP embedding size")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 keeps torch's default")
    a = p.parse_args(argv)
    config = load_config(a.config)
    if a.threads:
        torch.set_num_threads(a.threads)
    section = config["lm"]["sample"]
    model = load_lm(a.model) if a.model else random_model(config, a.n_semantic, a.clap_dim, a.system)
    claps = None
    if a.embeddings:
        claps = np.load(a.embeddings)
        if claps.ndim != 2 or claps.shape[1] != model.clap_dim:
            raise SystemExit(f"{a.embeddings}: expected (N, {model.clap_dim}) CLAP embeddings, got {claps.shape}")
    prompt_args = dict(
        condition_tokens=a.condition_tokens,
        frames=a.frames,
        audio_tokens=a.audio_tokens or audio_token_count(section["duration_s"], config),
        claps=claps,
    )
    cfg = SampleConfig.from_config(section, a.variant)
    table = run(model, cfg, a.batch_size or section["batch_size"], prompt_args, config["seed"], not a.no_naive_batch)
    caption = (
        f"LM sampler speed: {model.n_params() / 1e6:.2f}M-param {model.system} LM "
        f"({'random' if a.random_model else a.model}), {a.condition_tokens} condition tokens, "
        f"{a.frames} thought frames x {model.vocab.rvq_levels} levels, {prompt_args['audio_tokens']} audio tokens, "
        f"{cfg}, {torch.get_num_threads()} threads."
    )
    write(table, a.out, caption)
    print(caption)
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
