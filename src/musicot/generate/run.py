"""Generate every evaluation prompt with one system of Table 1: semantic LM -> acoustic DiT -> decoder.

    python -m musicot.generate.run --config CFG --system musicot --conditions results/generate/conditions \
        --lm results/lm/musicot/model --dit results/acoustic/dit --vae results/acoustic/vae \
        --out results/generate/musicot

A system is data (`generate.systems`): which trained LM samples the tokens and which `lm.sample` variant
it samples with; there is no per-system code. Every system gets the same prompts, conditions and seeds,
and the DiT renders in the same fixed batches, so two systems differ only by what the system changes.

Lengths: the LM learned a whole song's thought followed by the song's first `lm.max_audio_s` seconds of
tokens, so it is asked for the thought of a `generate.song_s` song and `lm.sample.duration_s` seconds of
audio tokens; those are rendered. Timings are wall seconds per part (LM, DiT, decoder); the LM and the
renderer work on batches, and a batch's time is split evenly over its songs. Output files are listed in
docs/interfaces.md (generate).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from musicot.config import ConfigError, load_config
from musicot.generate.conditions import Conditions
from musicot.generate.hardware import hardware, hardware_text
from musicot.lm.sample import Prompt, SampleConfig, Sampled, sample
from musicot.lm.sequence import audio_token_count

log = logging.getLogger("musicot.generate")

TIMING_FILE, THOUGHTS_FILE, SUMMARY_FILE, TOKENS_DIR = "timing.csv", "thoughts.parquet", "generation.json", "tokens"
TIMING_COLUMNS = ["prompt_id", "audio_s", "lm_s", "dit_s", "decoder_s", "total_s"]
THOUGHT_COLUMNS = {"prompt_id": "string", "frame": "int64", "level": "int64", "code": "int64"}
DIT_SEED_OFFSET = 1_000_003  # the DiT's seeds live apart from the LM's prompt seeds


@dataclass(frozen=True)
class System:
    """One row of Table 1: a name, the LM that samples its tokens, and its `lm.sample` variant ("" = none)."""

    name: str
    lm: str
    sample: str = ""

    @classmethod
    def from_config(cls, config: Mapping, name: str) -> System:
        systems = {s["name"]: s for s in config["generate"]["systems"]}
        if name not in systems:
            raise ConfigError(f"generate.systems has no {name!r}; configured: {sorted(systems)}")
        entry = systems[name]
        return cls(entry["name"], entry["lm"], entry.get("sample", ""))

    def sample_config(self, config: Mapping) -> SampleConfig:
        return SampleConfig.from_config(config["lm"]["sample"], self.sample or None)


@dataclass(frozen=True)
class Lengths:
    """Thought frames and audio tokens per song, and the seconds they stand for."""

    song_s: float
    duration_s: float
    n_frames: int
    n_audio: int

    @classmethod
    def from_config(cls, config: Mapping) -> Lengths:
        duration = float(config["lm"]["sample"]["duration_s"])
        song = max(float(config["generate"]["song_s"]), duration)  # a thought never plans less than is rendered
        n_frames = max(1, math.ceil(song / float(config["clap"]["window_s"]) - 1e-9))
        return cls(song, duration, n_frames, max(1, audio_token_count(duration, config)))


def prompt_seed(seed: int, index: int) -> int:
    """The seed of the prompt at `index` of the prompt file: the same in every system and every batch."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def lm_prompts(
    conditions: Conditions, tokenizer, max_lyric_tokens: int, lengths: Lengths, rows: Sequence[int]
) -> list[Prompt]:
    """The LM's requests for the conditions' `rows`: CLAP text embedding, Eq. 5 tag text, lyrics."""
    from musicot.lm.text import encode

    out = []
    for r in rows:
        row = conditions.table.iloc[r]
        out.append(
            Prompt(
                clap=conditions.clap[r].astype(np.float32),
                tag_ids=encode(tokenizer, str(row["tags_text"])),
                lyric_ids=encode(tokenizer, str(row["lyrics_text"]), max_lyric_tokens),
                n_frames=lengths.n_frames,
                n_audio=lengths.n_audio,
            )
        )
    return out


def thought_rows(prompt_id: str, thought: np.ndarray | None) -> list[dict]:
    if thought is None:
        return []
    return [
        dict(prompt_id=prompt_id, frame=m, level=level, code=int(thought[m, level]))
        for m in range(thought.shape[0])
        for level in range(thought.shape[1])
    ]


def write_song(audio_path: Path, tokens_path: Path, audio: np.ndarray, sample_rate: int, tokens: np.ndarray) -> None:
    # PCM_16 FLAC, as the corpus: the renderer's float output is clipped to [-1, 1] by the format.
    sf.write(str(audio_path), np.clip(audio.T, -1.0, 1.0), sample_rate, subtype="PCM_16")
    np.save(tokens_path, tokens.astype(np.int16))


def generate(
    config: Mapping,
    system: System,
    conditions: Conditions,
    lm_dir: Path,
    dit_dir: Path,
    vae_dir: Path | None,
    out: Path,
) -> dict:
    """Generate every prompt of `conditions` with `system`; writes `out` and returns the summary."""
    from transformers import PreTrainedTokenizerFast

    from musicot.acoustic.config import AcousticConfig
    from musicot.acoustic.sample import Renderer
    from musicot.lm.model import load_lm

    gen, lm_cfg = config["generate"], config["lm"]
    cfg = system.sample_config(config)
    lengths = Lengths.from_config(config)
    if lengths.duration_s > lm_cfg["max_audio_s"] + 1e-9:
        log.warning(
            "rendering %.1f s of tokens but the LM learned %.1f s (lm.max_audio_s)",
            lengths.duration_s,
            lm_cfg["max_audio_s"],
        )
    model = load_lm(lm_dir).eval()
    if model.system != system.lm:
        raise ValueError(f"{lm_dir} holds the {model.system!r} LM but system {system.name!r} asks for {system.lm!r}")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(lm_dir))
    renderer = Renderer.load(AcousticConfig.from_config(config), dit_dir, vae_dir)
    sr = renderer.codec.sample_rate
    out.mkdir(parents=True, exist_ok=True)
    (out / TOKENS_DIR).mkdir(exist_ok=True)

    ids = conditions.table["prompt_id"].astype(str).tolist()
    seed = int(config["seed"])
    timing, thoughts = [], []
    chunk, lm_batch = int(gen["render_batch"]), int(lm_cfg["sample"]["batch_size"])
    with tqdm(total=len(ids), desc=f"{system.name}: songs", unit="song", mininterval=5) as bar:
        for start in range(0, len(ids), chunk):
            rows = list(range(start, min(start + chunk, len(ids))))
            sampled: list[Sampled] = []
            lm_s = np.zeros(len(rows))
            for b in range(0, len(rows), lm_batch):
                part = rows[b : b + lm_batch]
                prompts = lm_prompts(conditions, tokenizer, lm_cfg["max_lyric_tokens"], lengths, part)
                generators = [torch.Generator().manual_seed(prompt_seed(seed, r)) for r in part]
                t0 = time.perf_counter()
                sampled += sample(model, prompts, cfg, generators)
                lm_s[b : b + len(part)] = (time.perf_counter() - t0) / len(part)
            clap = conditions.clap[rows].astype(np.float32) if gen["dit_clap"] else None
            t0 = time.perf_counter()
            frames = renderer.frames_batch(
                [s.audio for s in sampled], lengths.duration_s, clap, prompt_seed(seed, DIT_SEED_OFFSET + start)
            )
            t1 = time.perf_counter()
            audio = renderer.decode_batch(frames, lengths.duration_s)
            t2 = time.perf_counter()
            for k, r in enumerate(rows):
                write_song(out / f"{ids[r]}.flac", out / TOKENS_DIR / f"{ids[r]}.npy", audio[k], sr, sampled[k].audio)
                thoughts += thought_rows(ids[r], sampled[k].thought)
                dit_s, dec_s = (t1 - t0) / len(rows), (t2 - t1) / len(rows)
                timing.append(
                    dict(
                        prompt_id=ids[r],
                        audio_s=audio[k].shape[-1] / sr,
                        lm_s=lm_s[k],
                        dit_s=dit_s,
                        decoder_s=dec_s,
                        total_s=lm_s[k] + dit_s + dec_s,
                    )
                )
            bar.update(len(rows))

    timing_df = pd.DataFrame(timing, columns=TIMING_COLUMNS)
    timing_df.to_csv(out / TIMING_FILE, index=False)
    pd.DataFrame(thoughts, columns=list(THOUGHT_COLUMNS)).astype(THOUGHT_COLUMNS).to_parquet(
        out / THOUGHTS_FILE, index=False
    )
    summary = summarise(system, cfg, lengths, timing_df, hardware(int(gen["threads"])), seed)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def summarise(system: System, cfg: SampleConfig, lengths: Lengths, timing: pd.DataFrame, hw: dict, seed: int) -> dict:
    """generation.json: what was generated, how, on what, and the RTF of each part."""
    audio = float(timing["audio_s"].sum())
    totals = {part: float(timing[f"{part}_s"].sum()) for part in ("lm", "dit", "decoder", "total")}
    return dict(
        system=system.name,
        lm=system.lm,
        variant=system.sample,
        sample=asdict(cfg),
        seed=seed,
        duration_s=lengths.duration_s,
        song_s=lengths.song_s,
        n_frames=lengths.n_frames,
        n_audio_tokens=lengths.n_audio,
        n_prompts=len(timing),
        audio_seconds=audio,
        hardware=hw,
        hardware_text=hardware_text(hw),
        totals=totals,
        rtf={part: (value / audio if audio else float("nan")) for part, value in totals.items()},
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--system", required=True, help="a name in generate.systems")
    parser.add_argument("--conditions", type=Path, required=True, help="results/generate/conditions")
    parser.add_argument("--lm", type=Path, required=True, help="the system's LM folder (results/lm/<lm>/model)")
    parser.add_argument("--dit", type=Path, required=True, help="results/acoustic/dit")
    parser.add_argument(
        "--vae", type=Path, default=None, help="results/acoustic/vae (needed when acoustic.space is vae)"
    )
    parser.add_argument("--out", type=Path, required=True, help="results/generate/<system>")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    if config["generate"]["threads"]:
        torch.set_num_threads(int(config["generate"]["threads"]))
    system = System.from_config(config, args.system)
    summary = generate(config, system, Conditions.load(args.conditions), args.lm, args.dit, args.vae, args.out)
    log.info("%s: %d songs, RTF %s (%s)", system.name, summary["n_prompts"], summary["rtf"], summary["hardware_text"])


if __name__ == "__main__":
    main()
