"""What the LM trains on, one row per song: text condition ids, the thought, CLAP windows, audio tokens.

    python -m musicot.lm.data --config CFG --tracks results/corpus/tracks.parquet \
        --tags results/prep/tags.parquet --clap-tags results/clap/tags.parquet \
        --lyrics results/prep/lyrics.parquet --structure results/prep/structure.parquet \
        --prep-rejected results/prep/rejected.tsv --windows results/clap/embeddings/windows.parquet \
        --codes results/rvq/codes.parquet --rvq results/rvq --tokens results/semantic/tokens \
        --tokenizer results/lm/tokenizer --out results/lm/data

Writes `songs.parquet` (song_id, split, duration_s, tags_text, lyrics_text, tag_ids, lyric_ids,
n_frames, thought = the (M, L) codes flattened coarse to fine, clap_rows = the song's rows in
windows.npy, tokens = its semantic token file), `vocab.json` and `rejected.tsv` (song_id, step,
reason, detail) for songs left out: rejected by preprocessing, or without codes or tokens.

The thought of a song is M = ceil(duration / window) non-overlapping windows: frame k is the CLAP
window starting at k * window, or, past the last full window (a song's tail shorter than a
window), the window that ends at the song's end (the last one embedded).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.config import load_config
from musicot.lm.text import encode, lyrics_text, tags_text
from musicot.lm.vocab import Vocab
from musicot.prep.common import PREP_REJECT_COLUMNS, load_tracks, write_rejected

log = logging.getLogger("musicot.lm.data")

SONGS_FILE, VOCAB_FILE, REJECTED_FILE = "songs.parquet", "vocab.json", "rejected.tsv"
STEP = "lm_data"


def thought_rows(starts: np.ndarray, duration_s: float, window_s: float) -> list[int]:
    """Indices into a song's windows (sorted `starts`) of its M = ceil(duration / window) thought frames."""
    n_frames = max(1, math.ceil(duration_s / window_s - 1e-6))
    return [int(np.argmin(np.abs(starts - min(k * window_s, starts[-1])))) for k in range(n_frames)]


def song_thoughts(windows: pd.DataFrame, codes: pd.DataFrame, durations: dict[str, float], window_s: float):
    """{song_id: ((M, L) codes, all window rows of the song)} for the songs with codes."""
    levels = int(codes["level"].max()) + 1
    wide = codes.pivot_table(index=["song_id", "window"], columns="level", values="code", aggfunc="first")
    windows = windows.reset_index(names="row")
    out = {}
    for song_id, group in windows.groupby("song_id", sort=True):
        if song_id not in durations:
            continue
        group = group.sort_values("start")
        keys = [(song_id, int(w)) for w in group["window"]]
        if not all(k in wide.index for k in keys):
            continue
        picks = thought_rows(group["start"].to_numpy(), durations[song_id], window_s)
        frames = wide.loc[[keys[p] for p in picks], list(range(levels))].to_numpy(dtype=np.int64)
        out[song_id] = (frames, group["row"].to_numpy(dtype=np.int64))
    return out


def song_tags(tags: pd.DataFrame, clap_tags: pd.DataFrame | None) -> dict[str, dict[str, list[str]]]:
    """{song_id: {family: [tag, ...]}} from the prep tags plus CLAP's gap-filling zero-shot tags."""
    rows = tags[["song_id", "family", "tag"]]
    if clap_tags is not None and len(clap_tags):
        rows = pd.concat([rows, clap_tags.loc[clap_tags["fills_gap"], ["song_id", "family", "tag"]]])
    out: dict[str, dict[str, list[str]]] = {}
    for (song_id, family), group in rows.groupby(["song_id", "family"], sort=True):
        out.setdefault(song_id, {})[family] = list(dict.fromkeys(group["tag"].astype(str)))
    return out


def build(args: argparse.Namespace, config: dict) -> tuple[pd.DataFrame, pd.DataFrame, Vocab]:
    """The song table, the rejections and the vocabulary (see the module docstring)."""
    from transformers import PreTrainedTokenizerFast

    lm = config["lm"]
    tokenizer = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
    tracks = load_tracks(args.tracks)
    rejected_prep = pd.read_csv(args.prep_rejected, sep="\t", dtype=str) if args.prep_rejected else None
    skip = set(rejected_prep["song_id"]) if rejected_prep is not None else set()
    windows, codes = pd.read_parquet(args.windows), pd.read_parquet(args.codes)
    rvq = json.loads((args.rvq / "config.json").read_text())
    window_s = float(windows["end"].iloc[0] - windows["start"].iloc[0]) if len(windows) else 10.0
    durations = dict(zip(tracks["song_id"], tracks["duration_s"], strict=True))
    thoughts = song_thoughts(windows, codes, durations, window_s)
    tags = song_tags(pd.read_parquet(args.tags), pd.read_parquet(args.clap_tags) if args.clap_tags else None)
    lyrics, structure = pd.read_parquet(args.lyrics), pd.read_parquet(args.structure)
    lines_by_song = dict(tuple(lyrics.groupby("song_id")))
    sections_by_song = dict(tuple(structure.groupby("song_id")))
    empty_lines, empty_sections = lyrics.iloc[:0], structure.iloc[:0]
    rows, rejected, n_semantic = [], [], 0
    for track in tracks.itertuples():
        sid = track.song_id
        token_file = args.tokens / f"{sid}.npy"
        reason = (
            ("rejected_in_prep", "listed in results/prep/rejected.tsv")
            if sid in skip
            else ("no_thought", "no RVQ codes for its CLAP windows")
            if sid not in thoughts
            else ("no_tokens", f"{token_file} missing")
            if not token_file.exists()
            else None
        )
        if reason:
            rejected.append(dict(song_id=sid, step=STEP, reason=reason[0], detail=reason[1]))
            continue
        frames, clap_rows = thoughts[sid]
        tag_text = tags_text(tags.get(sid, {}))
        lyric_text = lyrics_text(lines_by_song.get(sid, empty_lines), sections_by_song.get(sid, empty_sections))
        n_semantic = max(n_semantic, int(np.load(token_file, mmap_mode="r").max()) + 1)
        rows.append(
            dict(
                song_id=sid,
                split=track.split,
                duration_s=float(track.duration_s),
                tags_text=tag_text,
                lyrics_text=lyric_text,
                tag_ids=encode(tokenizer, tag_text),
                lyric_ids=encode(tokenizer, lyric_text, lm["max_lyric_tokens"]),
                n_frames=len(frames),
                thought=frames.reshape(-1).tolist(),  # row-major (M, L); sequence.flatten_thought orders it
                clap_rows=clap_rows.tolist(),
                tokens=str(token_file),
            )
        )
    if not rows:
        raise ValueError(f"no song has codes, tokens and passed preprocessing: see {args.out / REJECTED_FILE}")
    # The codebook's size, not the largest code seen: generation may use codes no training song did.
    n_semantic = max(n_semantic, int(config["semantic"]["n_tokens"]))
    vocab = Vocab(len(tokenizer), int(rvq["levels"]), int(rvq["codebook_size"]), n_semantic)
    return pd.DataFrame(rows), pd.DataFrame(rejected, columns=list(PREP_REJECT_COLUMNS)), vocab


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    for name in ("tracks", "tags", "lyrics", "structure", "windows", "codes", "rvq", "tokens", "tokenizer", "out"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--clap-tags", type=Path, default=None)
    parser.add_argument("--prep-rejected", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    songs, rejected, vocab = build(args, load_config(args.config))
    args.out.mkdir(parents=True, exist_ok=True)
    songs.to_parquet(args.out / SONGS_FILE, index=False)
    write_rejected(rejected.to_dict("records"), args.out / REJECTED_FILE)
    (args.out / VOCAB_FILE).write_text(json.dumps(vocab.to_json(), indent=2))
    log.info(
        "lm data: %d songs (%s), %d left out, vocab %d",
        len(songs),
        songs["split"].value_counts().to_dict(),
        len(rejected),
        vocab.size,
    )


if __name__ == "__main__":
    main()
