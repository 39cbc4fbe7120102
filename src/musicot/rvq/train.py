"""Train the RVQ tokenizer on CLAP window embeddings and write every window's codes.

    python -m musicot.rvq.train --config CFG --embeddings results/clap/windows.npy \
        --windows results/clap/windows.parquet --out results/rvq --state results/rvq/state

windows.parquet has one row per 10 s window (song_id, window, start, end, split), in the row
order of the (N, dim) embeddings array. Trains on split == "train" only, reports metrics on
split == "valid", and writes into --out: model.safetensors + config.json (`save_rvq`),
metrics.json (final train/valid metrics, history, timings) and codes.parquet (song_id,
window, level, code for every row of every split; level is 0-based, codes in [0, K)).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from musicot.config import ConfigError, load_config
from musicot.rvq.model import RvqConfig, encode, save_rvq, train_rvq

log = logging.getLogger("musicot.rvq.train")

METRICS_FILE = "metrics.json"
CODES_FILE = "codes.parquet"
WINDOW_COLUMNS = ("song_id", "window", "split")


def load_windows(
    embeddings: Path, windows: Path, columns: Sequence[str] = WINDOW_COLUMNS
) -> tuple[np.ndarray, pd.DataFrame]:
    """The (N, dim) float32 embeddings and their window table (with `columns`), checked to agree."""
    emb = np.load(embeddings).astype(np.float32, copy=False)
    table = pd.read_parquet(windows)
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{windows} lacks column(s) {missing}")
    if emb.ndim != 2 or len(emb) != len(table):
        raise ValueError(f"{embeddings} has shape {emb.shape} but {windows} has {len(table)} rows")
    if not np.isfinite(emb).all():
        raise ValueError(f"{embeddings} holds non-finite values")
    return emb, table.reset_index(drop=True)


def codes_table(table: pd.DataFrame, codes: np.ndarray) -> pd.DataFrame:
    """Long table (song_id, window, level, code): one row per window and level, window-major."""
    n, levels = codes.shape
    return pd.DataFrame(
        {
            "song_id": np.repeat(table["song_id"].to_numpy(), levels),
            "window": np.repeat(table["window"].to_numpy().astype(np.int64), levels),
            "level": np.tile(np.arange(levels, dtype=np.int64), n),
            "code": codes.reshape(-1).astype(np.int64),
        }
    )


def run(emb: np.ndarray, table: pd.DataFrame, cfg: RvqConfig, out: Path, state: Path, seed: int) -> dict:
    """Train, save the model, metrics.json and codes.parquet; returns the metrics."""
    split = table["split"].to_numpy()
    train, valid = emb[split == "train"], emb[split == "valid"]
    if len(train) == 0:
        raise ConfigError("no windows with split == 'train': cannot train the RVQ")
    model, metrics = train_rvq(train, cfg, state, seed=seed, valid=valid if len(valid) else None)
    out.mkdir(parents=True, exist_ok=True)
    save_rvq(model, cfg, emb.shape[1], out)
    codes = encode(model, emb)
    codes_table(table, codes).to_parquet(out / CODES_FILE, index=False)
    metrics["rows_by_split"] = {str(k): int(v) for k, v in table["split"].value_counts().sort_index().items()}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    final = metrics["valid"] or metrics["train"]
    log.info("rvq: %s", " ".join(f"{k}={v:.3f}" for k, v in final.items() if k.startswith(("cos", "perp"))))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--embeddings", type=Path, required=True, help="(N, dim) .npy of L2-normalised embeddings")
    parser.add_argument("--windows", type=Path, required=True, help="windows.parquet, same row order")
    parser.add_argument("--out", type=Path, required=True, help="folder for the model, metrics.json, codes.parquet")
    parser.add_argument("--state", type=Path, required=True, help="folder for the resumable training state")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    if args.threads:
        torch.set_num_threads(args.threads)
    emb, table = load_windows(args.embeddings, args.windows)
    run(emb, table, RvqConfig.from_config(config), args.out, args.state, seed=config["seed"])


if __name__ == "__main__":
    main()
