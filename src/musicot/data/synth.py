"""Render one shard of the built-in corpus: compose, synthesise stems, normalise, write truth.

    python -m musicot.data.synth --config config.yaml --shard 0 --out results/corpus/synth/shard0

Song i belongs to shard i mod corpus.synth.shards; its audio depends only on (seed, i).
Stems are stored as 16-bit FLAC and the mix is their integer sum, so mix == sum(stems)
holds exactly on disk.
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
from tqdm import tqdm

from musicot.audio import PCM16_MAX, framewise_rms, loudness_gain, write_flac
from musicot.config import build, load_config
from musicot.data.compose import ShiftConfig, SongPlan, SynthConfig, compose_song
from musicot.data.render import render_parts, write_midi
from musicot.data.table import SPLITS, STEMS, CorpusAudio, process_cpu_seconds, sha1_of_samples, write_part
from musicot.data.voice import SungWord, render_vocals

log = logging.getLogger("musicot.data.synth")
PCM_SCALE = 32768.0
SHIFTED_SPLIT = "shifted"  # the split of every song of the shifted evaluation corpus (never trained on)


def split_of(index: int, n_songs: int, fractions: Mapping[str, float], seed: int) -> str:
    """Exact split sizes for the synth corpus: a seeded permutation cut by the fractions."""
    order = np.random.default_rng([seed, n_songs]).permutation(n_songs)
    rank = int(np.flatnonzero(order == index)[0])
    n_valid = round(fractions.get("valid", 0.0) * n_songs)
    n_reference = round(fractions.get("reference", 0.0) * n_songs)
    return SPLITS[1] if rank < n_valid else SPLITS[2] if rank < n_valid + n_reference else SPLITS[0]


GAIN_RAMP_S = 0.05  # a section gain change fades over this long, as a fader would


def render_stems(plan: SongPlan, cfg: SynthConfig, sr: int) -> dict[str, np.ndarray]:
    """Float stereo stems at their configured levels (and the plan's per-section gains), all of one length."""
    n = int(np.ceil(plan.duration_s * sr))
    stems = render_parts(plan.parts.values(), n, sr, cfg.soundfont, cfg.effects)
    words = [SungWord(w.text, w.start, w.end, w.pitch, w.velocity) for w in plan.words]
    mono = render_vocals(words, plan.gender, sr, n, cfg.voice) if words else np.zeros(n, np.float32)
    stems["vocals"] = np.repeat(mono[:, None], 2, axis=1)
    out = {stem: stems[stem] * np.float32(10 ** (getattr(cfg.stem_gain_db, stem) / 20)) for stem in STEMS}
    for stem, gains_db in plan.section_gain_db.items():
        out[stem] = out[stem] * section_envelope(plan, gains_db, n, sr)[:, None]
    return out


def section_envelope(plan: SongPlan, gains_db: tuple[float, ...], n: int, sr: int) -> np.ndarray:
    """(n,) linear gain: each section's gain, ramped over GAIN_RAMP_S into the next; the tail keeps the last."""
    gains = 10 ** (np.asarray(gains_db, dtype=np.float64) / 20)
    starts = np.array([round(s.start * sr) for s in plan.sections])
    index = np.clip(np.searchsorted(starts, np.arange(n), side="right") - 1, 0, len(gains) - 1)
    envelope = gains[index]
    ramp = max(1, round(GAIN_RAMP_S * sr))
    kernel = np.ones(ramp) / ramp
    padded = np.concatenate([np.full(ramp - 1, envelope[0]), envelope])
    return np.convolve(padded, kernel, mode="valid").astype(np.float32)


def quantize_stems(stems: dict[str, np.ndarray], audio: CorpusAudio) -> tuple[dict[str, np.ndarray], float]:
    """Loudness-normalise the mix by one gain on every stem, then round each stem to int16.

    Returns the int16 stems and the gain in dB. The gain is also capped so that no stem and
    no mix sample can leave the int16 range.
    """
    mix = sum(stems.values())
    gain = loudness_gain(mix, audio.sample_rate, audio.loudness_lufs, audio.peak_ceiling)
    stem_peak = max(float(np.abs(s).max()) for s in stems.values())
    if stem_peak > 0:
        gain = min(gain, audio.peak_ceiling / stem_peak)
    ints = {k: np.round(v * gain * PCM16_MAX).astype(np.int16) for k, v in stems.items()}
    return ints, 20 * float(np.log10(gain))


def write_song_audio(
    song_dir: Path, song_id: str, stems: Mapping[str, np.ndarray], sr: int, volume_hop_s: float
) -> tuple[np.ndarray, list[dict]]:
    """Write `song_dir`/mix.flac (the sum of the int16 stems) and <stem>.flac; return the int32 mix and
    the song's stem_volume rows (RMS per `volume_hop_s` frame)."""
    mix = np.sum([s.astype(np.int32) for s in stems.values()], axis=0)
    if np.abs(mix).max() > PCM16_MAX:
        raise RuntimeError(f"{song_id}: mix left the int16 range after normalisation (bug)")
    write_flac(song_dir / "mix.flac", mix.astype(np.int16), sr)
    volume = []
    for stem, data in stems.items():
        write_flac(song_dir / f"{stem}.flac", data, sr)
        for frame, value in enumerate(framewise_rms(data / PCM_SCALE, sr, volume_hop_s)):
            start = frame * volume_hop_s
            end = min(start + volume_hop_s, len(data) / sr)
            volume.append(dict(song_id=song_id, stem=stem, frame=frame, start=start, end=end, rms=value))
    return mix, volume


def render_song(
    index: int,
    cfg: SynthConfig,
    audio: CorpusAudio,
    volume_hop_s: float,
    n_songs: int,
    out_dir: Path,
    shift: ShiftConfig | None = None,
    song_id: str = "",
) -> dict[str, list[dict]]:
    """Compose, render and write one song; return its rows for each part table.

    With `shift` the song is one of the shifted evaluation corpus (`compose_song`): split "shifted",
    named `song_id`."""
    plan = compose_song(index, cfg, audio.seed, shift)
    if song_id:
        plan = replace(plan, song_id=song_id)
    sr = audio.sample_rate
    stems, gain_db = quantize_stems(render_stems(plan, cfg, sr), audio)
    song_dir = out_dir / "audio" / plan.song_id
    mix, volume = write_song_audio(song_dir, plan.song_id, stems, sr, volume_hop_s)
    write_midi(plan, song_dir / "song.mid")
    return {
        "tracks.parquet": [_track_row(plan, index, n_songs, audio, song_dir, len(mix) / sr, gain_db, mix, shift)],
        "sections.parquet": [
            dict(song_id=plan.song_id, index=i, label=s.label, start=s.start, end=s.end)
            for i, s in enumerate(plan.sections)
        ],
        "lyric_words.parquet": [
            dict(
                song_id=plan.song_id,
                line=w.line,
                word_index=w.index,
                word=w.text,
                start=w.start,
                end=w.start + cfg.voice.legato * (w.end - w.start),
                pitch=w.pitch,
            )
            for w in plan.words
        ],
        "lyric_lines.parquet": _line_rows(plan, cfg.voice.legato),
        "stem_volume.parquet": volume,
    }


def _track_row(
    plan: SongPlan,
    index: int,
    n_songs: int,
    audio: CorpusAudio,
    song_dir: Path,
    duration: float,
    gain_db: float,
    mix: np.ndarray,
    shift: ShiftConfig | None = None,
) -> dict:
    split = SHIFTED_SPLIT if shift is not None else split_of(index, n_songs, audio.split_fractions, audio.seed)
    return dict(
        song_id=plan.song_id,
        source="synth",
        source_path="",
        split=split,
        audio_path=str(song_dir / "mix.flac"),
        stems_dir=str(song_dir),
        sample_rate=audio.sample_rate,
        channels=2,
        duration_s=duration,
        caption=plan.caption,
        genre=plan.genre,
        subgenre=plan.subgenre,
        mood=plan.mood,
        gender=plan.gender,
        instruments=",".join(plan.instruments),
        tempo_bpm=float(plan.tempo_bpm),
        key=plan.key,
        lyrics="\n".join(plan.lines),
        lyrics_timed=bool(plan.lines),
        gain_db=gain_db,
        content_sha1=sha1_of_samples(mix / PCM_SCALE),
        notes="",
    )


def _line_rows(plan: SongPlan, legato: float) -> list[dict]:
    rows = []
    for line, text in enumerate(plan.lines):
        words = [w for w in plan.words if w.line == line]
        end = words[-1].start + legato * (words[-1].end - words[-1].start)
        rows.append(dict(song_id=plan.song_id, line=line, text=text, start=words[0].start, end=end))
    return rows


def render_shard(config: Mapping, shard: int, out_dir: Path) -> None:
    """Render every song of `shard` into the part directory `out_dir`."""
    cfg = build(SynthConfig, config["corpus"]["synth"])
    audio = CorpusAudio.from_config(config)
    if not 0 <= shard < cfg.shards:
        raise ValueError(f"--shard {shard} is outside 0..{cfg.shards - 1} (corpus.synth.shards)")
    indices = range(shard, cfg.n_songs, cfg.shards)
    cpu0, wall0 = process_cpu_seconds(), time.perf_counter()
    tables: dict[str, list[dict]] = {}
    for index in tqdm(indices, desc=f"synth shard {shard}", unit="song"):
        for name, rows in render_song(
            index, cfg, audio, config["corpus"]["volume_hop_s"], cfg.n_songs, out_dir
        ).items():
            tables.setdefault(name, []).extend(rows)
    write_part(out_dir, tables, rejected=[])
    stats = {"songs": len(indices), "cpu_s": process_cpu_seconds() - cpu0, "wall_s": time.perf_counter() - wall0}
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    log.info("shard %d: %d songs, %.1f CPU-s", shard, stats["songs"], stats["cpu_s"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--shard", type=int, required=True, help="shard index, 0-based")
    parser.add_argument("--out", type=Path, required=True, help="part directory to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    render_shard(load_config(args.config), args.shard, args.out)


if __name__ == "__main__":
    main()
