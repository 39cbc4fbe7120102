"""The MOS test kit: one static page that plays each prompt's songs from every system, blinded and shuffled.

    python -m musicot.listen.kit --config CFG --conditions results/generate/conditions \
        --systems results/generate/base results/generate/musicot ... \
        --out results/listening/mos --key results/listening/mos_key.json

The paper's MOS came from 10 professionals rating 1-5. The kit lets anyone run that test: a rater opens
`index.html` (from the folder, no server), hears each prompt's songs under letters in an order drawn
anew for them, rates each on `listen.mos.dimensions` and downloads one JSON file, which
`musicot.listen.ratings` turns into MOS per system. Songs are copied into `audio/` under opaque sample
ids, so neither the page nor its files name a system; the key from sample id to system and prompt is
written apart from the folder (`--key`) and goes to whoever aggregates, never to raters.

The kit's id hashes every sample id with its audio, so a ratings file made for songs that have since
been generated again is refused rather than counted for the new ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from musicot.config import build, load_config
from musicot.generate.conditions import CONDITIONS_FILE
from musicot.listen.html import SystemSongs, asset, copy_into, esc, page, script_json, sha1_file
from musicot.listen.ratings import FORMAT as RATINGS_FORMAT
from musicot.listen.ratings import KEY_FORMAT
from musicot.listen.ratings import VERSION as RATINGS_VERSION

log = logging.getLogger("musicot.listen")

KIT_FORMAT = "musicot-mos-kit"
SCALE_WORDS = ("bad", "poor", "fair", "good", "excellent")  # ITU-T P.800's absolute category rating


@dataclass(frozen=True)
class MosConfig:
    """listen.mos: which songs the kit holds and what raters are asked."""

    systems: tuple[str, ...] = ()
    max_prompts: int = 0
    dimensions: tuple[Mapping, ...] = ()
    ratings: str = "ratings/mos"  # read by the aggregation rule, not here
    confidence: float = 0.95

    @classmethod
    def from_config(cls, config: Mapping) -> MosConfig:
        return build(cls, config["listen"]["mos"])


def sample_id(seed: int, system: str, prompt_id: str) -> str:
    """An id that says nothing of the system: a hash of the kit seed, system and prompt."""
    return hashlib.sha1(f"{seed}:{system}:{prompt_id}".encode()).hexdigest()[:12]


def pick(systems: Sequence[SystemSongs], cfg: MosConfig) -> tuple[list[SystemSongs], list[str]]:
    """The kit's systems (config order, all when none named) and the prompts every one of them generated."""
    by_name = {s.name: s for s in systems}
    wanted = list(cfg.systems) or list(by_name)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ValueError(f"listen.mos.systems names {unknown}, not among the generated systems {sorted(by_name)}")
    chosen = [by_name[n] for n in wanted]
    prompts = sorted(set.intersection(*(set(s.songs) for s in chosen)))
    for s in chosen:
        missing = sorted(set(s.songs) - set(prompts))
        if missing:  # a prompt one system lacks cannot be compared across systems: say so
            log.warning(
                "%s: %d songs left out of the kit, as another system lacks them (%s)", s.name, len(missing), missing[:3]
            )
    if cfg.max_prompts:
        prompts = prompts[: cfg.max_prompts]
    if not prompts:
        raise ValueError(f"the systems {wanted} have no prompt in common: nothing to rate")
    return chosen, prompts


def build_kit(
    systems: Sequence[SystemSongs], conditions: pd.DataFrame, cfg: MosConfig, seed: int, out: Path
) -> tuple[dict, dict]:
    """Copy the songs into out/audio and return (the page's kit data, the key)."""
    chosen, prompts = pick(systems, cfg)
    text = conditions.set_index("prompt_id")
    rng = random.Random(seed)
    trials, key_rows = [], []
    for prompt_id in prompts:
        samples = []
        for system in chosen:
            sid = sample_id(seed, system.name, prompt_id)
            source = system.songs[prompt_id]
            audio = copy_into(source, out, f"audio/{sid}{source.suffix}")
            samples.append(dict(sample=sid, audio=audio))
            key_rows.append(dict(sample=sid, system=system.name, prompt_id=prompt_id, audio_sha1=sha1_file(source)))
        rng.shuffle(samples)  # the page shuffles again per rater; this keeps the file itself blind
        row = text.loc[prompt_id] if prompt_id in text.index else None
        trials.append(
            dict(
                trial=f"t{len(trials) + 1:03d}",
                prompt="" if row is None else str(row["prompt"]),
                lyrics="" if row is None else str(row["lyrics"]),
                samples=samples,
            )
        )
    kit_id = hashlib.sha1(
        "".join(f"{r['sample']}:{r['audio_sha1']};" for r in sorted(key_rows, key=lambda r: r["sample"])).encode()
    ).hexdigest()[:16]
    dimensions = [dict(d) for d in cfg.dimensions]
    kit = dict(
        format=KIT_FORMAT,
        kit=kit_id,
        dimensions=dimensions,
        scale=list(SCALE_WORDS),
        ratings_format=RATINGS_FORMAT,
        ratings_version=RATINGS_VERSION,
        trials=trials,
    )
    key = dict(format=KEY_FORMAT, kit=kit_id, dimensions=[d["name"] for d in dimensions], samples=key_rows)
    return kit, key


def kit_page(kit: Mapping) -> str:
    n_songs = sum(len(t["samples"]) for t in kit["trials"])
    dims = "".join(f"<li><b>{esc(d['label'])}</b>: {esc(d['question'])}</li>" for d in kit["dimensions"])
    body = f"""<h1>Listening test</h1>
<p>{len(kit["trials"])} sets of songs, {n_songs} songs in all. The songs of a set were made from the same prompt
and lyrics by different systems; which system made which song is hidden, and the order is drawn anew for you.
Rate every song from 1 ({esc(SCALE_WORDS[0])}) to 5 ({esc(SCALE_WORDS[-1])}) on:</p>
<ul>{dims}</ul>
<p class="note">Listen with headphones at a comfortable level. Your ratings stay in this browser until you download
them; the download button works once every song is rated. Kit {esc(kit["kit"])}.</p>
<div class="sticky"><label>Your name or rater id: <input id="rater" autocomplete="off"></label>
<span id="progress"></span> <button id="submit" disabled>Download my ratings</button> <span id="done"></span></div>
<div id="trials"></div>
<script id="kit" type="application/json">{script_json(kit)}</script>"""
    return page("musicot listening test", body, asset("mos.js"))


def run(config: Mapping, conditions_dir: Path, system_dirs: Sequence[Path], out: Path, key_path: Path) -> dict:
    cfg = MosConfig.from_config(config)
    systems = [SystemSongs.load(d) for d in system_dirs]
    conditions = pd.read_parquet(Path(conditions_dir) / CONDITIONS_FILE)
    out.mkdir(parents=True, exist_ok=True)
    kit, key = build_kit(systems, conditions, cfg, int(config["seed"]), out)
    (out / "index.html").write_text(kit_page(kit), encoding="utf-8")
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key, indent=1))
    log.info(
        "MOS kit %s: %d sets, %d songs in %s; key %s",
        kit["kit"],
        len(kit["trials"]),
        len(key["samples"]),
        out,
        key_path,
    )
    return kit


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    parser.add_argument("--conditions", type=Path, required=True, help="results/generate/conditions")
    parser.add_argument("--systems", type=Path, nargs="+", required=True, help="results/generate/<system> folders")
    parser.add_argument("--out", type=Path, required=True, help="the kit folder (index.html, audio/)")
    parser.add_argument("--key", type=Path, required=True, help="sample id -> system key, kept outside the kit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run(load_config(args.config), args.conditions, args.systems, args.out, args.key)


if __name__ == "__main__":
    main()
