"""Pre-encode every corpus song once into the DiT's frame space (as stable-audio-tools pre-encodes latents).

    python -m musicot.acoustic.latents --config CFG --tracks results/corpus/tracks.parquet \
        --vae results/acoustic/vae --out results/acoustic/latents [--threads 2]

Writes <out>/<song_id>.npy (float16, (dim, frames)) for every song of every split and <out>/index.json:
the space (acoustic.space: VAE-GAN posterior means or log-mel), frame rate, dim, the per-channel mean and
standard deviation over the train songs (the DiT models normalised frames) and each song's frame count.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from musicot.acoustic.codec import load_codec
from musicot.acoustic.config import cli_config
from musicot.acoustic.data import load_audio
from musicot.audio import resolve_corpus_path
from musicot.prep.common import load_tracks

log = logging.getLogger("musicot.acoustic.latents")

INDEX_FILE = "index.json"
FRAME_DTYPE = np.float16


def read_index(folder: Path) -> dict:
    path = Path(folder) / INDEX_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run musicot.acoustic.latents first")
    return json.loads(path.read_text())


def load_frames(folder: Path, song_id: str) -> np.ndarray:
    return np.load(Path(folder) / f"{song_id}.npy").astype(np.float32)


def encode_all(cfg, tracks_path: Path, vae_dir: Path | None, out: Path) -> dict:
    started = time.perf_counter()
    codec = load_codec(cfg, vae_dir)
    tracks = load_tracks(tracks_path)
    out.mkdir(parents=True, exist_ok=True)
    songs, train_frames = {}, []
    for t in tracks.itertuples():
        audio = load_audio(resolve_corpus_path(t.audio_path, tracks_path), cfg.sample_rate, cfg.channels)
        frames = codec.encode(audio)
        if not np.isfinite(frames).all():
            raise ValueError(f"{t.song_id}: non-finite frames from the {codec.name} codec")
        np.save(out / f"{t.song_id}.npy", frames.astype(FRAME_DTYPE))
        songs[str(t.song_id)] = {
            "frames": int(frames.shape[1]),
            "split": str(t.split),
            "duration_s": audio.shape[1] / cfg.sample_rate,
        }
        if t.split == "train":
            train_frames.append(frames)
    if not train_frames:
        raise ValueError(f"{tracks_path} has no train-split song to take frame statistics from")
    stacked = np.concatenate(train_frames, axis=1)
    index = {
        "space": codec.name,
        "sample_rate": codec.sample_rate,
        "channels": codec.channels,
        "dim": int(codec.dim),
        "hop": int(codec.hop),
        "frame_rate": codec.sample_rate / codec.hop,
        "mean": stacked.mean(axis=1).tolist(),
        "std": np.maximum(stacked.std(axis=1), 1e-3).tolist(),
        "songs": songs,
        "wall_s": time.perf_counter() - started,
    }
    (out / INDEX_FILE).write_text(json.dumps(index, indent=1))
    log.info(
        "%d songs encoded as %s frames (%d x %.2f Hz) in %.1f s",
        len(songs),
        codec.name,
        codec.dim,
        index["frame_rate"],
        index["wall_s"],
    )
    return index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, acoustic)")
    parser.add_argument("--tracks", type=Path, required=True)
    parser.add_argument("--vae", type=Path, required=True, help="the VAE folder (read only when acoustic.space is vae)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    encode_all(cfg, args.tracks, args.vae, args.out)


if __name__ == "__main__":
    main()
