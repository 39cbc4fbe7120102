"""Render semantic tokens to audio with the trained DiT and its decoder (`musicot render`).

    python -m musicot.acoustic.render --config CFG --dit results/acoustic/dit --vae results/acoustic/vae \
        --tokens results/semantic/tokens/synth00003.npy [--clap vec.npy] [--duration 8] [--seed 0] --out song.flac

--tokens is an int .npy of 25 Hz semantic tokens (a corpus song's, or the LM's); --duration defaults to the
tokens' length; --clap an optional (D,) CLAP vector .npy. The generation stage calls `Renderer.render`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from musicot.acoustic.config import cli_config
from musicot.acoustic.sample import Renderer
from musicot.audio import write_flac


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, acoustic)")
    parser.add_argument("--dit", type=Path, required=True)
    parser.add_argument("--vae", type=Path, required=True, help="the VAE folder (decodes when acoustic.space is vae)")
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--clap", type=Path, default=None)
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: the tokens' length)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    tokens = np.load(args.tokens)
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise SystemExit(f"{args.tokens}: expected a 1-D integer token array, got {tokens.dtype} {tokens.shape}")
    renderer = Renderer.load(cfg, args.dit, args.vae)
    if tokens.min() < 0 or tokens.max() >= renderer.model.spec.n_tokens:
        raise SystemExit(
            f"{args.tokens}: tokens must lie in [0, {renderer.model.spec.n_tokens}), "
            f"got [{tokens.min()}, {tokens.max()}]"
        )
    duration = args.duration or len(tokens) / renderer.model.spec.token_rate
    clap = np.load(args.clap).astype(np.float32) if args.clap else None
    audio = renderer.render(tokens.astype(np.int64), duration, clap, args.seed)
    write_flac(args.out, np.clip(audio, -1, 1).T, renderer.codec.sample_rate)
    print(f"{args.out}: {duration:.2f} s at {renderer.codec.sample_rate} Hz ({renderer.model.spec.space} frames)")


if __name__ == "__main__":
    main()
