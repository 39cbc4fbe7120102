"""The shifted evaluation corpus: songs of the built-in composer made differently, for the thought to read.

    python -m musicot.data.shifted --config CFG --training-tracks results/corpus/tracks.parquet \
        --out results/shifted

The analyzability of the held-out corpus songs (musicot.analysis.thought) is measured on songs of
the corpus CLAP was trained on: same GM programs, same SoundFont, same stem balance. This corpus
keeps the composer (forms, grooves, chords, sung lyrics) and changes what a new user's songs would
change (`analysis.shifted`): other GM programs per instrument family and other drum kits, another
SoundFont with reverb and chorus, another balance between stems, per-section stem gains of up to
+-`section_gain_db`, modes and tempos the training corpus never uses, songs with one instrument left
out, other espeak-ng voices. Song i is composed from the random stream [seed, SHIFT_STREAM, i]
(`musicot.data.compose.rng_key`), which no training song uses.

--out gets the layout of a corpus part (tracks.parquet with split "shifted", stem_volume.parquet,
sections.parquet, ..., audio/<song>/{mix,<stem>}.flac with mix == sum of stems), songs.parquet (each
song's random key, programs, kit, mode, tempo, absent stem, section-gain spread) and
differences.csv: how the two corpora differ, the sets each draws from and the stem balance measured
on both (median over songs of each stem's active-frame RMS, in dB relative to the mix's).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from musicot.config import build, load_config
from musicot.data.compose import (
    PITCHED_STEMS,
    SHIFT_STREAM,
    ShiftConfig,
    StemGains,
    SynthConfig,
    compose_song,
    rng_key,
)
from musicot.data.styles import SECTION_ENERGY, STANDARD_KIT, STYLES
from musicot.data.synth import render_song
from musicot.data.table import STEMS, CorpusAudio, process_cpu_seconds, write_part

log = logging.getLogger("musicot.data.shifted")

SONG_PREFIX = "shift"
DIFFERENCE_COLUMNS = ["property", "training corpus", "shifted corpus"]


def song_id_for(index: int) -> str:
    return f"{SONG_PREFIX}{index:05d}"


def shift_config(section: Mapping) -> ShiftConfig:
    """The ShiftConfig of a validated `analysis.shifted` section."""
    return ShiftConfig(
        programs={stem: tuple(section["programs"][stem]) for stem in PITCHED_STEMS},
        drum_kits=tuple(section["drum_kits"]),
        tempo=tuple((int(a), int(b)) for a, b in section["tempo"]),
        modes=tuple(section["modes"]),
        section_gain_db=float(section["section_gain_db"]),
        absent_fraction=float(section["absent_fraction"]),
    )


def synth_config(config: Mapping) -> SynthConfig:
    """The training corpus' synth settings with the shifted corpus' renderer, balance, lengths and voices."""
    base = build(SynthConfig, config["corpus"]["synth"])
    shifted = config["analysis"]["shifted"]
    return replace(
        base,
        n_songs=int(shifted["n_songs"]),
        shards=1,
        duration_s=tuple(shifted["duration_s"]),
        soundfont=str(shifted["soundfont"]),
        effects=bool(shifted["effects"]),
        stem_gain_db=StemGains(**shifted["stem_gain_db"]),
        voice=replace(base.voice, male_voice=shifted["male_voice"], female_voice=shifted["female_voice"]),
    )


def song_rows(cfg: SynthConfig, shift: ShiftConfig, seed: int) -> list[dict]:
    """What each shifted song was drawn with (songs.parquet)."""
    rows = []
    for index in range(cfg.n_songs):
        plan = compose_song(index, cfg, seed, shift)
        spread = [g for gains in plan.section_gain_db.values() for g in gains]
        rows.append(
            dict(
                song_id=song_id_for(index),
                rng_key=json.dumps(list(rng_key(index, seed, shifted=True))),
                genre=plan.genre,
                mode=plan.mode,
                tempo_bpm=plan.tempo_bpm,
                drum_kit=plan.parts["drums"].program,
                **{f"program_{stem}": plan.parts[stem].program for stem in PITCHED_STEMS},
                absent=plan.absent,
                section_gain_min_db=min(spread, default=0.0),
                section_gain_max_db=max(spread, default=0.0),
            )
        )
    return rows


def stem_balance(tracks: pd.DataFrame, volume: pd.DataFrame, active_rms: float) -> dict[str, float]:
    """Per stem, the median over songs of its mean active-frame RMS in dB relative to the song's mix
    (the sum of its stems' frame powers): how loud each stem sits in the mixes of a corpus."""
    volume = volume[volume["song_id"].isin(tracks["song_id"])]
    power = volume.assign(p=volume["rms"] ** 2)
    mix = power.groupby(["song_id", "frame"])["p"].sum().groupby("song_id").mean()
    out = {}
    for stem in STEMS:
        rows = power[(power["stem"] == stem) & (power["rms"] > active_rms)]
        if not len(rows):
            out[stem] = float("nan")
            continue
        level = rows.groupby("song_id")["p"].mean()
        out[stem] = float(np.median(10 * np.log10(level / mix.reindex(level.index))))
    return out


def songs_without(volume: pd.DataFrame, songs: pd.Series, active_rms: float) -> int:
    """Songs in which some instrument stem never rises above `active_rms` (absent throughout)."""
    volume = volume[volume["song_id"].isin(songs)]
    loudest = volume[volume["stem"].isin(["drums", *PITCHED_STEMS])].groupby(["song_id", "stem"])["rms"].max()
    return int((loudest <= active_rms).groupby("song_id").any().sum())


def _fmt_set(values) -> str:
    return ", ".join(str(v) for v in sorted(set(values)))


def differences(
    config: Mapping,
    shifted_songs: pd.DataFrame,
    shifted_tables: Mapping[str, pd.DataFrame],
    training_tracks: pd.DataFrame,
    training_volume: pd.DataFrame,
    active_rms: float,
) -> pd.DataFrame:
    """The table of how the shifted corpus differs from the training corpus (DIFFERENCE_COLUMNS)."""
    synth = config["corpus"]["synth"]
    styles = [STYLES[g] for g in synth["genres"]]
    shifted = config["analysis"]["shifted"]
    rows = [
        ("songs", len(training_tracks), len(shifted_songs)),
        ("random streams", "[seed, i]", f"[seed, {SHIFT_STREAM}, i]"),
        ("SoundFont", Path(synth["soundfont"]).name, Path(shifted["soundfont"]).name),
        ("reverb and chorus", "on" if synth.get("effects") else "off", "on" if shifted["effects"] else "off"),
        (
            "voices",
            f"{synth['voice']['male_voice']}, {synth['voice']['female_voice']}",
            f"{shifted['male_voice']}, {shifted['female_voice']}",
        ),
    ]
    for stem in PITCHED_STEMS:
        rows.append(
            (
                f"GM programs: {stem}",
                _fmt_set(getattr(s, stem).program for s in styles),
                _fmt_set(shifted_songs[f"program_{stem}"]),
            )
        )
    rows.append(("drum kits", str(STANDARD_KIT), _fmt_set(shifted_songs["drum_kit"])))
    rows.append(("modes", "major, minor", _fmt_set(shifted_songs["mode"])))
    low, high = min(s.tempo[0] for s in styles), max(s.tempo[1] for s in styles)
    drawn = shifted_songs["tempo_bpm"]
    rows.append(("tempo (BPM)", f"{low}-{high}", f"{drawn.min()}-{drawn.max()} (ranges {shifted['tempo']})"))
    dynamics = 20 * np.log10(0.7 + 0.3 * min(SECTION_ENERGY.values()))
    rows.append(
        (
            "per-section stem gain (dB)",
            f"velocity only, {dynamics:.1f} to 0",
            f"{shifted_songs['section_gain_min_db'].min():.1f} to {shifted_songs['section_gain_max_db'].max():.1f}",
        )
    )
    rows.append(
        (
            "songs with an instrument absent throughout (truth)",
            songs_without(training_volume, training_tracks["song_id"], active_rms),
            songs_without(shifted_tables["stem_volume.parquet"], shifted_songs["song_id"], active_rms),
        )
    )
    ours = stem_balance(shifted_tables["tracks.parquet"], shifted_tables["stem_volume.parquet"], active_rms)
    theirs = stem_balance(training_tracks, training_volume, active_rms)
    for stem in STEMS:
        rows.append((f"{stem} level vs mix (dB, median, truth)", round(theirs[stem], 1), round(ours[stem], 1)))
    for stem in STEMS:
        key = f"stem_gain_db: {stem}"
        rows.append((key, synth["stem_gain_db"][stem], shifted["stem_gain_db"][stem]))
    return pd.DataFrame([[str(v) for v in r] for r in rows], columns=DIFFERENCE_COLUMNS)


def make_corpus(config: Mapping, out_dir: Path, training_tracks: Path | None = None) -> pd.DataFrame:
    """Render every shifted song into `out_dir`; returns songs.parquet's table."""
    cfg, shift = synth_config(config), shift_config(config["analysis"]["shifted"])
    audio = CorpusAudio.from_config(config)
    cpu0, wall0 = process_cpu_seconds(), time.perf_counter()
    tables: dict[str, list[dict]] = {}
    for index in tqdm(range(cfg.n_songs), desc="shifted corpus", unit="song"):
        rows = render_song(
            index, cfg, audio, config["corpus"]["volume_hop_s"], cfg.n_songs, out_dir, shift, song_id_for(index)
        )
        for name, part in rows.items():
            tables.setdefault(name, []).extend(part)
    write_part(out_dir, tables, rejected=[])
    songs = pd.DataFrame(song_rows(cfg, shift, audio.seed))
    songs.to_parquet(out_dir / "songs.parquet", index=False)
    if training_tracks is not None:
        written = {name: pd.read_parquet(out_dir / name) for name in ("tracks.parquet", "stem_volume.parquet")}
        train = pd.read_parquet(training_tracks)
        train_volume = pd.read_parquet(Path(training_tracks).parent / "stem_volume.parquet")
        active = float(config["clap"]["active_rms"])
        differences(config, songs, written, train, train_volume, active).to_csv(
            out_dir / "differences.csv", index=False
        )
    stats = {"songs": cfg.n_songs, "cpu_s": process_cpu_seconds() - cpu0, "wall_s": time.perf_counter() - wall0}
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    log.info("shifted corpus: %d songs, %.1f CPU-s", stats["songs"], stats["cpu_s"])
    return songs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--training-tracks", type=Path, help="the training corpus' tracks.parquet (differences.csv)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (results/shifted)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    make_corpus(load_config(args.config), args.out, args.training_tracks)


if __name__ == "__main__":
    main()
