"""`musicot generate`: one song from a text prompt and a lyric file, with its drawn thought beside it.

    musicot generate --prompt "A dreamy folk song with female vocals and acoustic guitar" \
        --lyrics my_lyrics.txt [--reference SONG.wav] --out DIR [--results results] [--config config.yaml]

Uses the models a workflow run trained under `--results` (CLAP and its calibrated Eq. 5 delta, the RVQ,
the `--system` LM, the acoustic DiT and decoder) with the config's sampling values. Tags are chosen
from the prompt by Eq. 5, as for the evaluation prompts. With `--reference` the reference song's
thought (its CLAP windows through the RVQ, `musicot.lm.reference`) is given to the LM instead of
sampled, so the new song follows the reference's arrangement: music referencing. The song is as long
as `lm.sample.duration_s` (or `--duration`); the thought plans `generate.song_s` (or the reference).

Writes DIR/song.flac, song_thought.csv (frame, start, end, code_<level>, sim_<anchor>: the drawn
thought and its anchor similarities), song_tokens.npy and song.json (prompt, tags, seed, timings).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from musicot.config import load_config

log = logging.getLogger("musicot.generate")


def make_song(args: argparse.Namespace) -> dict:
    from transformers import PreTrainedTokenizerFast

    from musicot.acoustic.config import AcousticConfig
    from musicot.acoustic.sample import Renderer
    from musicot.analysis.thought import thought_frames
    from musicot.clap.data import ANCHORS
    from musicot.clap.model import load as load_clap
    from musicot.generate.conditions import eq5_tags, read_delta, tag_vectors, tag_vocabulary, tags_by_family
    from musicot.generate.hardware import hardware
    from musicot.generate.run import Lengths, System, write_song
    from musicot.lm.model import load_lm
    from musicot.lm.reference import reference_thought
    from musicot.lm.sample import Prompt, sample
    from musicot.lm.text import encode, tags_text

    config = load_config(args.config)
    if args.duration:
        config["lm"]["sample"]["duration_s"] = float(args.duration)
    results = Path(args.results)
    paths = {
        "clap": results / "clap" / "model",
        "selection": results / "clap" / "tag_selection.json",
        "rvq": results / "rvq",
        "dit": results / "acoustic" / "dit",
        "vae": results / "acoustic" / "vae",
    }
    system = System.from_config(config, args.system)
    paths["lm"] = results / "lm" / system.lm / "model"
    if missing := [f"{k} ({p})" for k, p in paths.items() if not p.exists()]:
        raise SystemExit(f"missing trained models: {', '.join(missing)}; run the workflow first (make run)")
    lyrics_path = Path(args.lyrics)
    if not lyrics_path.is_file():
        raise SystemExit(f"--lyrics {lyrics_path}: no such file")
    lyrics = lyrics_path.read_text(encoding="utf-8").strip()

    clap = load_clap(paths["clap"])
    vector = clap.embed_text([args.prompt])[0]
    vocabulary = tag_vocabulary()
    _, used = eq5_tags(
        vector, tag_vectors(clap, vocabulary), read_delta(paths["selection"]), config["generate"]["max_tags"]
    )
    tags = tags_by_family(used, vocabulary)
    lengths = Lengths.from_config(config)
    reference = None
    if args.reference:
        reference = reference_thought(Path(args.reference), paths["clap"], paths["rvq"])
    model = load_lm(paths["lm"]).eval()
    if reference is not None and not model.uses_thought:
        raise SystemExit(f"--reference needs an LM with a thought; system {system.name!r} uses {system.lm!r}")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(paths["lm"]))
    prompt = Prompt(
        clap=vector.astype(np.float32),
        tag_ids=encode(tokenizer, tags_text(tags)),
        lyric_ids=encode(tokenizer, lyrics, config["lm"]["max_lyric_tokens"]),
        n_frames=lengths.n_frames if reference is None else len(reference),
        n_audio=lengths.n_audio,
        thought=reference,
    )
    t0 = time.perf_counter()
    drawn = sample(model, [prompt], system.sample_config(config), [torch.Generator().manual_seed(args.seed)])[0]
    t1 = time.perf_counter()
    renderer = Renderer.load(AcousticConfig.from_config(config), paths["dit"], paths["vae"])
    frames = renderer.frames(drawn.audio, lengths.duration_s, None, args.seed)
    t2 = time.perf_counter()
    audio = renderer.decode(frames, lengths.duration_s)
    t3 = time.perf_counter()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_song(out / "song.flac", out / "song_tokens.npy", audio, renderer.codec.sample_rate, drawn.audio)
    if drawn.thought is not None:
        window_s = float(config["clap"]["window_s"])
        anchor_text = clap.embed_text(list(ANCHORS))
        thought_frames(drawn.thought, paths["rvq"], anchor_text, ANCHORS, window_s).to_csv(
            out / "song_thought.csv", index=False
        )
    audio_s = audio.shape[-1] / renderer.codec.sample_rate
    info = dict(
        prompt=args.prompt,
        lyrics=str(lyrics_path),
        reference=args.reference,
        system=system.name,
        tags=tags,
        seed=args.seed,
        duration_s=audio_s,
        thought_frames=None if drawn.thought is None else len(drawn.thought),
        seconds=dict(lm=t1 - t0, dit=t2 - t1, decoder=t3 - t2),
        rtf=(t3 - t0) / audio_s,
        hardware=hardware(torch.get_num_threads()),
    )
    (out / "song.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="musicot generate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompt", required=True, help="text prompt (tags are chosen from it by Eq. 5)")
    parser.add_argument("--lyrics", required=True, help="lyric file; [VERSE]/[CHORUS]/... on their own lines")
    parser.add_argument("--reference", default=None, help="audio file whose thought the song follows")
    parser.add_argument("--out", required=True, help="folder to write song.flac and its thought into")
    parser.add_argument("--results", default="results", help="the workflow's results folder (trained models)")
    parser.add_argument("--config", default="config.yaml", help="config the models were trained with")
    parser.add_argument("--system", default="musicot", help="a name in generate.systems")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, default=None, help="seconds (default lm.sample.duration_s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    info = make_song(args)
    log.info("wrote %s/song.flac: %.1f s, tags %s, RTF %.2f", args.out, info["duration_s"], info["tags"], info["rtf"])


if __name__ == "__main__":
    main()
