"""The musical thought of any audio file, window by window, as a table and a timeline figure.

    musicot analyze SONG.wav --clap results/clap/model --rvq results/rvq --out DIR

The song is cut into CLAP windows (window and hop from the CLAP model's saved training config,
else its clip length and the schema's ``clap.hop_s``), each window is embedded by CLAP, quantized
by the RVQ (`encode`) and decoded back (`decode`): the thought the LM sees, brought back into
CLAP space. Its cosine with each anchor word's CLAP text embedding is written to
DIR/<song>_thought.csv (window, start, end, code_<level> 0-based, sim_<anchor>) and drawn by
`plot_timeline` into DIR/<song>_timeline.pdf and .png.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicot.analysis.analyzability import ANCHORS, anchor_similarity
from musicot.analysis.timeline import plot_timeline
from musicot.config import validate

log = logging.getLogger("musicot.analysis")


def clap_windowing(model_dir: Path, clip_seconds: float) -> tuple[float, float]:
    """(window_s, hop_s) the CLAP model in `model_dir` was trained and embedded with.

    `train` saves its clap config section in config.json; a model saved without it (e.g. a
    converted checkpoint) windows at its clip length with the schema's default hop.
    """
    from musicot.clap.model import SPEC_FILE

    saved = json.loads((Path(model_dir) / SPEC_FILE).read_text()).get("clap", {})
    window_s = float(saved.get("window_s", clip_seconds))
    hop_s = float(saved.get("hop_s", validate({})["clap"]["hop_s"]))
    return window_s, hop_s


def song_thought(
    audio_path: Path, clap_dir: Path, rvq_dir: Path, anchors: Sequence[str] = ANCHORS, hop_s: float | None = None
) -> pd.DataFrame:
    """One row per window of the file: window, start, end, code_<level>, sim_<anchor>."""
    from musicot.clap import data as D
    from musicot.clap.model import load
    from musicot.rvq.model import decode, encode, load_rvq, read_rvq_config

    clap = load(clap_dir)
    _, rvq_dim = read_rvq_config(rvq_dir)
    if rvq_dim != clap.joint_dim:
        raise SystemExit(
            f"the RVQ in {rvq_dir} quantizes {rvq_dim}-d embeddings but the CLAP model in {clap_dir} "
            f"embeds {clap.joint_dim}-d: pass the RVQ trained on this CLAP model's embeddings"
        )
    sr = clap.spec.sample_rate
    window_s, saved_hop = clap_windowing(clap_dir, clap.spec.clip_samples / sr)
    hop_s = hop_s or saved_hop
    try:
        mono = D.load_mono(audio_path, sr)
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        raise SystemExit(f"cannot read {audio_path} as audio: {error}") from None
    if not len(mono):
        raise SystemExit(f"{audio_path} holds no samples")
    duration = len(mono) / sr
    starts = D.window_starts(duration, window_s, hop_s)
    emb = clap.embed_audio(D.sliding_windows(mono, sr, window_s, hop_s))
    rvq = load_rvq(rvq_dir)
    codes = encode(rvq, emb)
    sims = anchor_similarity(decode(rvq, codes), clap.embed_text(list(anchors)))
    ends = np.minimum(starts + window_s, duration)
    table = pd.DataFrame({"window": np.arange(len(starts)), "start": starts, "end": ends})
    for level in range(codes.shape[1]):
        table[f"code_{level}"] = codes[:, level]
    for a, anchor in enumerate(anchors):
        table[f"sim_{anchor}"] = sims[:, a]
    return table


def analyze(
    audio_path: Path,
    clap_dir: Path,
    rvq_dir: Path,
    out_dir: Path,
    anchors: Sequence[str] = ANCHORS,
    hop_s: float | None = None,
) -> list[Path]:
    """Write <song>_thought.csv and <song>_timeline.pdf/.png into `out_dir`; returns their paths."""
    table = song_thought(audio_path, clap_dir, rvq_dir, anchors, hop_s)
    song = Path(audio_path).stem
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv = out_dir / f"{song}_thought.csv"
    table.to_csv(csv, index=False)
    figures = [out_dir / f"{song}_timeline.{ext}" for ext in ("pdf", "png")]
    plot_timeline(table, anchors, figures, title=f"musical thought of {Path(audio_path).name}")
    return [csv, *figures]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="musicot analyze", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("song", type=Path, help="any audio file soundfile reads (wav, flac, ogg, ...)")
    parser.add_argument("--clap", type=Path, required=True, help="CLAP model folder (results/clap/model)")
    parser.add_argument("--rvq", type=Path, required=True, help="RVQ folder (results/rvq)")
    parser.add_argument("--out", type=Path, required=True, help="folder for <song>_thought.csv and the timeline")
    parser.add_argument("--anchors", nargs="+", default=list(ANCHORS), help="anchor words (default: the paper's five)")
    parser.add_argument("--hop-s", type=float, default=None, help="hop between windows (default: the CLAP model's)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.song.is_file():
        raise SystemExit(f"{args.song} is not a file")
    if args.hop_s is not None and args.hop_s <= 0:
        raise SystemExit(f"--hop-s must be positive, got {args.hop_s}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for path in analyze(args.song, args.clap, args.rvq, args.out, args.anchors, args.hop_s):
        print(path)


if __name__ == "__main__":
    main()
