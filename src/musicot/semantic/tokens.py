"""Write the semantic tokens of every song of every split.

    python -m musicot.semantic.tokens --config CFG --tracks results/corpus/tracks.parquet \
        --model results/semantic/encoder --out results/semantic/tokens [--threads 2]

One `<song_id>.npy` per song: int16, shape (ceil(duration / frame_s),), one token per 40 ms of the
mix (at the defaults), covering the whole song.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from musicot.prep.common import load_tracks
from musicot.semantic.config import cli_config
from musicot.semantic.features import read_mono
from musicot.semantic.tokenizer import Tokenizer

log = logging.getLogger("musicot.semantic.tokens")


def write_tokens(tok: Tokenizer, tracks_path: Path, out: Path) -> dict:
    """Tokenize every track's mix into out/<song_id>.npy; returns counts and timings."""
    tracks = load_tracks(tracks_path)
    if not len(tracks):
        raise ValueError(f"{tracks_path} lists no songs")
    out.mkdir(parents=True, exist_ok=True)
    started, n_tokens, seconds = time.perf_counter(), 0, 0.0
    sr = tok.features_cfg.sample_rate
    for t in tracks.itertuples():
        mono = read_mono(str(t.audio_path), sr)
        codes = tok.tokens(mono, sr)
        np.save(out / f"{t.song_id}.npy", codes)
        n_tokens, seconds = n_tokens + len(codes), seconds + len(mono) / sr
    wall = time.perf_counter() - started
    summary = {
        "songs": len(tracks),
        "tokens": n_tokens,
        "audio_s": seconds,
        "tokens_per_s": n_tokens / max(seconds, 1e-9),
    }
    summary["wall_s"] = wall
    log.info(
        "semantic tokens: %d songs, %d tokens (%.2f per s of audio) in %.1f s",
        len(tracks),
        n_tokens,
        summary["tokens_per_s"],
        wall,
    )
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, semantic)")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
    parser.add_argument("--model", type=Path, required=True, help="tokenizer folder written by musicot.semantic.train")
    parser.add_argument("--out", type=Path, required=True, help="folder for <song_id>.npy")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default semantic.threads)")
    args = parser.parse_args(argv)
    cli_config(args.config, args.threads)  # validates the config, sets threads and logging
    print(json.dumps(write_tokens(Tokenizer.load(args.model), args.tracks, args.out), indent=2))


if __name__ == "__main__":
    main()
