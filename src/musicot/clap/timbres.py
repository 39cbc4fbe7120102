"""Train songs re-rendered with other instruments, for CLAP's timbre augmentation.

    python -m musicot.clap.timbres --config CFG --tracks results/corpus/tracks.parquet \
        --out results/clap/timbres [--threads 2]

The built-in corpus plays each instrument family with a handful of GM programs through one
SoundFont, so a CLAP trained on it can tie "bass" to those few sounds. Every train-split song of
the synth corpus is composed again from its own plan (same notes, sections and lyrics) and its
instrument stems are rendered `clap.timbres.variants` more times, each variant with a SoundFont
drawn from `soundfonts`, for every pitched stem a GM program of `programs` other than the song's
own, and a drum kit of `drum_kits`. Each re-rendered stem is scaled to the original stem's RMS over
the song, so the variant keeps the song's balance and only the timbre changes; the vocals are the
original ones. Variant k of song i draws from [seed, TIMBRE_STREAM, i, k].

--out gets the layout of a corpus part at the CLAP tower's sample rate (tracks.parquet with split
"train", song ids ``<song>_t<k>``, stem_volume.parquet, audio/<id>/{mix,<stem>}.flac with mix == sum
of stems), variants.parquet (what each variant was rendered with) and stats.json. Songs without a
plan (not from the synth corpus) are counted and listed in rejected.tsv, never silently dropped.
The schema keeps these sets apart from `analysis.shifted`'s: the shifted corpus must still hold
timbres CLAP never heard.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.audio import PCM16_MAX, resolve_corpus_path, rms
from musicot.config import ConfigError, build, load_config
from musicot.data.compose import PITCHED_STEMS, SynthConfig, compose_song, song_id_for
from musicot.data.render import SoundFontError, render_parts
from musicot.data.synth import write_song_audio
from musicot.data.table import STEMS, process_cpu_seconds, write_part
from musicot.prep.common import load_tracks

log = logging.getLogger("musicot.clap.timbres")

TIMBRE_STREAM = 6_271  # variant k of song i draws from [seed, TIMBRE_STREAM, i, k]
SYNTH_ID = re.compile(r"^synth(\d{5})$")
VARIANT_COLUMNS = {
    "song_id": "string",
    "source_song": "string",
    "variant": "int64",
    "soundfont": "string",
    "drum_kit": "int64",
    **{f"program_{stem}": "int64" for stem in PITCHED_STEMS},
}


@dataclass(frozen=True)
class TimbreConfig:
    """clap.timbres of the config schema (descriptions and defaults live there)."""

    variants: int = 1
    soundfonts: tuple[str, ...] = ()
    programs: Mapping[str, tuple[int, ...]] | None = None
    drum_kits: tuple[int, ...] = (0,)


def check_disjoint(timbres: Mapping, shifted: Mapping) -> None:
    """Refuse timbre sets that share a GM program or drum kit with the shifted corpus (analysis.shifted)."""
    clashes = []
    for stem in PITCHED_STEMS:
        both = sorted(set(timbres["programs"][stem]) & set(shifted["programs"][stem]))
        if both:
            clashes.append(f"{stem} programs {both}")
    kits = sorted(set(timbres["drum_kits"]) & set(shifted["drum_kits"]))
    if kits:
        clashes.append(f"drum kits {kits}")
    if clashes:
        raise ConfigError(
            "clap.timbres shares " + ", ".join(clashes) + " with analysis.shifted: CLAP would train on the "
            "timbres the shifted corpus is there to hold out"
        )


Presets = Mapping[str, tuple[frozenset[int], frozenset[int]]]  # SoundFont -> (bank 0 programs, drum kits)


def soundfont_presets(soundfonts: Sequence[str]) -> dict[str, tuple[frozenset[int], frozenset[int]]]:
    """The GM programs (bank 0) and drum kits (bank 128) each SoundFont has."""
    import fluidsynth  # deferred: needs the libfluidsynth system library

    out = {}
    for soundfont in soundfonts:
        if not Path(soundfont).is_file():
            raise SoundFontError(f"clap.timbres SoundFont {soundfont} not found: run `make setup`")
        fs = fluidsynth.Synth()
        try:
            sfid = fs.sfload(soundfont)
            if sfid < 0:
                raise SoundFontError(f"FluidSynth could not load SoundFont {soundfont}")
            programs = frozenset(p for p in range(128) if fs.sfpreset_name(sfid, 0, p))
            kits = frozenset(k for k in range(128) if fs.sfpreset_name(sfid, 128, k))
        finally:
            fs.delete()
        out[soundfont] = (programs, kits)
    return out


def draw_variant(
    plan_programs: Mapping[str, int], cfg: TimbreConfig, presets: Presets, rng: np.random.Generator
) -> tuple[str, int, dict[str, int]]:
    """(SoundFont, drum kit, program per pitched stem) of one variant, from what that SoundFont has:
    for each stem a program other than the song's own where the set allows; kit 0 if it has none of the kits."""
    soundfont = str(cfg.soundfonts[rng.integers(len(cfg.soundfonts))])
    have_programs, have_kits = presets[soundfont]
    kits = [k for k in cfg.drum_kits if k in have_kits] or [0]
    kit = int(kits[rng.integers(len(kits))])
    programs = {}
    for stem in PITCHED_STEMS:
        usable = [p for p in cfg.programs[stem] if p in have_programs] or [plan_programs[stem]]
        choices = [p for p in usable if p != plan_programs[stem]] or usable
        programs[stem] = int(choices[rng.integers(len(choices))])
    return soundfont, kit, programs


def _song_index(song_id: str) -> int | None:
    match = SYNTH_ID.match(song_id)
    return int(match.group(1)) if match else None


def render_variants(
    track: Mapping,
    synth: SynthConfig,
    cfg: TimbreConfig,
    presets: Presets,
    seed: int,
    sr: int,
    hop_s: float,
    out_dir: Path,
) -> dict[str, list[dict]]:
    """Every variant of one train song: its part-table rows (tracks, stem_volume) and variants rows."""
    from musicot.clap.data import load_stems  # deferred: keeps the CLI's start light

    song = str(track["song_id"])
    index = _song_index(song)
    plan = compose_song(index, synth, seed)
    if plan.song_id != song_id_for(index) or abs(plan.duration_s - float(track["duration_s"])) > 0.05:
        raise RuntimeError(
            f"{song}: composing it again gives {plan.duration_s:.2f} s, the corpus has "
            f"{float(track['duration_s']):.2f} s; corpus.synth or seed changed since the corpus was rendered"
        )
    original = load_stems(str(track["stems_dir"]), sr)
    rows: dict[str, list[dict]] = {"tracks.parquet": [], "stem_volume.parquet": [], "variants": []}
    n = max(len(a) for a in original.values())
    for k in range(cfg.variants):
        rng = np.random.default_rng([seed, TIMBRE_STREAM, index, k])
        own = {stem: plan.parts[stem].program for stem in PITCHED_STEMS}
        soundfont, kit, programs = draw_variant(own, cfg, presets, rng)
        parts = {stem: replace(plan.parts[stem], program=programs[stem]) for stem in PITCHED_STEMS}
        parts["drums"] = replace(plan.parts["drums"], program=kit)
        rendered = render_parts(parts.values(), n, sr, soundfont)
        stems = {}
        for stem in STEMS:
            source = original.get(stem, np.zeros(n, np.float32))
            source = np.pad(source, (0, n - len(source)))
            if stem not in rendered:  # vocals: the original voice
                stems[stem] = source.astype(np.float64)
                continue
            alt = rendered[stem].mean(axis=1).astype(np.float64)
            target, level = rms(source), rms(alt)
            stems[stem] = alt * (target / level) if level > 0 and target > 0 else np.zeros(n)
        variant_id = f"{song}_t{k}"
        song_dir = out_dir / "audio" / variant_id
        _, volume = write_song_audio(song_dir, variant_id, _quantize(stems), sr, hop_s)
        rows["stem_volume.parquet"].extend(volume)
        row = dict(track)
        row.update(
            song_id=variant_id,
            split="train",
            audio_path=str(song_dir / "mix.flac"),
            stems_dir=str(song_dir),
            sample_rate=sr,
            channels=1,
            duration_s=n / sr,
            notes=f"timbre variant {k} of {song}",
        )
        rows["tracks.parquet"].append(row)
        rows["variants"].append(
            dict(song_id=variant_id, source_song=song, variant=k, soundfont=Path(soundfont).name, drum_kit=kit)
            | {f"program_{s}": programs[s] for s in PITCHED_STEMS}
        )
    return rows


def _quantize(stems: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """int16 stems at their levels, all scaled down together if their sum would leave the int16 range."""
    peak = float(np.abs(sum(stems.values())).max())
    scale = min(1.0, 0.98 / peak) if peak > 0 else 1.0
    return {k: np.round(v * scale * PCM16_MAX).astype(np.int16) for k, v in stems.items()}


def _render_one(args) -> dict[str, list[dict]]:
    return render_variants(*args)


def build_timbres(config: Mapping, tracks_path: Path, out_dir: Path, threads: int = 1) -> dict:
    """Render every variant of the train songs into `out_dir`; returns the stats written."""
    from musicot.clap.model import preset_spec

    cfg = timbre_config(config)
    synth = build(SynthConfig, config["corpus"]["synth"])
    sr = preset_spec(config["clap"]["preset"], config["clap"]["window_s"]).sample_rate
    hop_s = float(config["corpus"]["volume_hop_s"])
    cpu0, wall0 = process_cpu_seconds(), time.perf_counter()
    tracks = load_tracks(tracks_path, ["train"])
    presets = soundfont_presets(cfg.soundfonts) if cfg.variants and len(tracks) else {}
    jobs, rejected = [], []
    for t in tracks.to_dict("records"):
        if _song_index(str(t["song_id"])) is None or not str(t.get("stems_dir") or ""):
            rejected.append(
                dict(
                    source_path=str(t.get("source_path") or ""),
                    song_id=str(t["song_id"]),
                    reason="no_plan",
                    detail="not a synth-corpus song: no composed plan to render again",
                )
            )
            continue
        t["stems_dir"] = str(resolve_corpus_path(str(t["stems_dir"]), tracks_path))
        jobs.append((t, synth, cfg, presets, int(config["seed"]), sr, hop_s, out_dir))
    if cfg.variants == 0:
        jobs = []
    tables: dict[str, list[dict]] = {}
    if threads > 1 and len(jobs) > 1:
        # spawn: a forked child inherits the FluidSynth state of the preset scan and hangs in it
        with ProcessPoolExecutor(threads, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_render_one, jobs))
    else:
        results = [_render_one(j) for j in jobs]
    for rows in results:
        for name, part in rows.items():
            tables.setdefault(name, []).extend(part)
    write_part(out_dir, tables, rejected)
    variants = pd.DataFrame(tables.get("variants", []), columns=list(VARIANT_COLUMNS)).astype(VARIANT_COLUMNS)
    variants.to_parquet(out_dir / "variants.parquet", index=False)
    for r in rejected:
        log.warning("timbres: skipped %s: %s", r["song_id"], r["detail"])
    stats = dict(
        songs=len(jobs),
        variants=len(variants),
        skipped=len(rejected),
        sample_rate=sr,
        cpu_s=process_cpu_seconds() - cpu0,
        wall_s=time.perf_counter() - wall0,
    )
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    log.info(
        "timbres: %d variants of %d train songs in %.1f s (%d skipped)",
        len(variants),
        len(jobs),
        stats["wall_s"],
        len(rejected),
    )
    return stats


def timbre_config(config: Mapping) -> TimbreConfig:
    """The TimbreConfig of a validated config, checked against analysis.shifted."""
    section = config["clap"]["timbres"]
    check_disjoint(section, config["analysis"]["shifted"])
    return TimbreConfig(
        variants=int(section["variants"]),
        soundfonts=tuple(str(s) for s in section["soundfonts"]),
        programs={stem: tuple(int(p) for p in section["programs"][stem]) for stem in PITCHED_STEMS},
        drum_kits=tuple(int(k) for k in section["drum_kits"]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--tracks", type=Path, required=True, help="the corpus tracks.parquet")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1, help="songs rendered at once")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    build_timbres(load_config(args.config), args.tracks, args.out, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
