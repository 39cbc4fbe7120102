"""Lyrics with line timestamps for every song: corpus lyrics where known, else Whisper, else "none".

The paper transcribes lyrics (with line times) from the separated vocals. Our corpus often
already knows them, so per song, in order:

1. ASR, when a Whisper checkpoint is configured and the song has no corpus lyrics (or
   ``prefer_truth`` is false): ``transformers``' ASR pipeline on the separated vocals at
   16 kHz (numpy in, no torchaudio) with ``return_timestamps=True``; every returned chunk
   becomes a line (source "asr"). ASR that hears nothing gives one empty-text "asr" row.
2. Corpus lyrics: timed ``lyric_lines`` (source "truth") or the untimed ``tracks.lyrics`` split
   into lines with NaN times (source "metadata").
3. Otherwise one row with empty text (source "none": instrumental or unknown), never dropped.

Quality: when ASR ran on songs with known lyrics, word error rate and the median line-start
error of lines whose first words align; otherwise a row saying ASR did not run. Always the
number of songs per source.

Run as ``python -m musicot.prep.lyrics --config CFG --tracks TRACKS --stems STEMS_DIR --out OUT
--quality CSV --rejected TSV``.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from musicot.config import build, load_config
from musicot.data.table import frame
from musicot.prep.common import load_tracks, load_truth, step_parser, write_step_outputs
from musicot.prep.vad import VOCAL_STEM, read_mono, torch_threads

STEP = "lyrics"
SOURCES = ("truth", "metadata", "asr", "none")
LYRICS_COLUMNS = {
    "song_id": "string",
    "line": "int64",
    "text": "string",
    "start": "float64",
    "end": "float64",
    "source": "string",
}
_SPECIAL_TOKEN = re.compile(r"<\|[^|]*\|>")  # Whisper control tokens that may leak into chunk text
_WORD = re.compile(r"[a-z0-9']+")

log = logging.getLogger("musicot.prep.lyrics")
Transcriber = Callable[[np.ndarray, int], list[dict]]


@dataclass(frozen=True)
class AsrConfig:
    """prep.asr of the config schema (descriptions and defaults live there)."""

    checkpoint: str | None
    language: str
    chunk_s: float
    batch_size: int
    prefer_truth: bool


# ---------------------------------------------------------------- rows per source


def corpus_lines(track: Any, timed_lines: pd.DataFrame | None) -> list[dict]:
    """Rows from the corpus' own lyrics: timed lines when present, else tracks.lyrics untimed; [] if none."""
    if timed_lines is not None and len(timed_lines):
        ordered = timed_lines.sort_values("line")
        return [
            _row(track.song_id, int(r.line), r.text, r.start, r.end, "truth") for r in ordered.itertuples(index=False)
        ]
    known = track.lyrics if isinstance(track.lyrics, str) else ""  # missing is "" by contract; NA tolerated
    texts = [t.strip() for t in known.split("\n") if t.strip()]
    return [_row(track.song_id, i, t, np.nan, np.nan, "metadata") for i, t in enumerate(texts)]


def none_row(song_id: str) -> dict:
    """The single row of a song with no known lyrics and no ASR: instrumental or unknown."""
    return _row(song_id, 0, "", np.nan, np.nan, "none")


def chunks_to_lines(song_id: str, chunks: Sequence[Mapping], duration_s: float) -> list[dict]:
    """Whisper pipeline chunks -> "asr" rows with times in [0, duration], starts ascending, end >= start.

    The pipeline may leave a timestamp None (an unfinished last segment) and, when merging
    chunks, can emit times past the audio: missing starts take the previous end, missing ends
    the next start (or the song end), and everything is clipped to the song. A well-behaved
    model's output passes through unchanged.
    """
    items = []
    for c in chunks:
        text = " ".join(_SPECIAL_TOKEN.sub(" ", str(c.get("text", ""))).split())
        start, end = [*(c.get("timestamp") or ()), None, None][:2]
        items.append([text, start, end])
    for i, item in enumerate(items):
        if item[1] is None:
            item[1] = items[i - 1][2] if i and items[i - 1][2] is not None else 0.0
    for i, item in enumerate(items):
        if item[2] is None:
            item[2] = items[i + 1][1] if i + 1 < len(items) else duration_s
    kept = [(t, float(np.clip(s, 0.0, duration_s)), float(np.clip(e, 0.0, duration_s))) for t, s, e in items if t]
    kept.sort(key=lambda x: x[1])
    if not kept:
        return [_row(song_id, 0, "", np.nan, np.nan, "asr")]
    return [_row(song_id, i, t, s, max(s, e), "asr") for i, (t, s, e) in enumerate(kept)]


def _row(song_id: str, line: int, text: str, start: float, end: float, source: str) -> dict:
    return {"song_id": song_id, "line": line, "text": text, "start": start, "end": end, "source": source}


# ---------------------------------------------------------------- Whisper


def load_whisper(cfg: AsrConfig) -> Transcriber:
    """A function (mono audio, sample rate) -> pipeline chunks, from the local checkpoint folder."""
    import torch
    from transformers import pipeline

    device = 0 if torch.cuda.is_available() else -1  # the job's GPU when it has one
    asr = pipeline("automatic-speech-recognition", model=str(cfg.checkpoint), device=device)
    if asr.tokenizer.pad_token is None:  # batching pads decoder outputs; Whisper pads with <|endoftext|>
        asr.tokenizer.pad_token = asr.tokenizer.eos_token
    sampling_rate = asr.feature_extractor.sampling_rate

    def transcribe(audio: np.ndarray, sr: int) -> list[dict]:
        if sr != sampling_rate:
            raise ValueError(f"Whisper wants {sampling_rate} Hz audio, got {sr}")
        out = asr(
            audio,
            return_timestamps=True,
            chunk_length_s=cfg.chunk_s,
            batch_size=cfg.batch_size,
            generate_kwargs={"language": cfg.language, "task": "transcribe"},
            ignore_warning=True,  # the chunking caveat is why lines are sanitised in chunks_to_lines
        )
        return list(out.get("chunks") or [])

    transcribe.sampling_rate = sampling_rate  # type: ignore[attr-defined]
    return transcribe


# ---------------------------------------------------------------- scoring


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (apostrophes kept), the unit of WER."""
    return _WORD.findall(text.lower())


def align(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, list[tuple[int | None, int | None]]]:
    """Levenshtein distance and one optimal alignment: (ref index or None, hyp index or None) pairs."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i, j] = min(sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((i, j))
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
            pairs.append((i, None))
        else:
            j -= 1
            pairs.append((None, j))
    return int(cost[n, m]), pairs[::-1]


def wer(ref: str, hyp: str) -> float:
    """Word error rate (substitutions + deletions + insertions) / reference words; NaN for an empty reference."""
    r, h = words(ref), words(hyp)
    return align(r, h)[0] / len(r) if r else float("nan")


def line_start_errors(truth: pd.DataFrame, asr: pd.DataFrame) -> list[float]:
    """|ASR start - truth start| of truth lines whose first word aligns (same word) with an ASR line's first word."""

    def flatten(lines: pd.DataFrame) -> tuple[list[str], dict[int, float]]:
        tokens, firsts = [], {}
        for r in lines.sort_values("start").itertuples(index=False):
            w = words(r.text)
            if w:
                firsts[len(tokens)] = float(r.start)
                tokens += w
        return tokens, firsts

    (ref, ref_first), (hyp, hyp_first) = flatten(truth), flatten(asr)
    _, pairs = align(ref, hyp)
    return [
        abs(hyp_first[j] - ref_first[i])
        for i, j in pairs
        if i in ref_first and j in hyp_first and ref[i] == hyp[j] and np.isfinite(ref_first[i])
    ]


def quality_rows(lyrics: pd.DataFrame, tracks: pd.DataFrame, truth_lines: pd.DataFrame, cfg: AsrConfig) -> list[dict]:
    """ASR scores on songs with known lyrics (or why there are none) and songs per source."""
    n_songs = int(lyrics["song_id"].nunique())
    by_source = lyrics.drop_duplicates("song_id")["source"].value_counts()
    rows = [
        {"step": STEP, "metric": f"songs_{s}", "value": int(by_source.get(s, 0)), "n": n_songs, "note": ""}
        for s in SOURCES
    ]
    asr = lyrics[lyrics["source"] == "asr"]
    asr_songs = sorted(asr["song_id"].unique())
    if not asr_songs:
        note = (
            "no ASR checkpoint: corpus lyrics used"
            if not cfg.checkpoint
            else "ASR checkpoint set but no song transcribed (corpus lyrics preferred, or stems rejected)"
        )
        return [{"step": STEP, "metric": "asr_ran", "value": 0, "n": 0, "note": note}, *rows]
    rows.insert(0, {"step": STEP, "metric": "asr_ran", "value": 1, "n": len(asr_songs), "note": str(cfg.checkpoint)})
    known = tracks.set_index("song_id")["lyrics"].fillna("")
    scored = [s for s in asr_songs if str(known.get(s, "")).strip()]
    if not scored:
        rows.append({"step": STEP, "metric": "wer", "value": np.nan, "n": 0, "note": "no transcribed song has truth"})
        return rows
    edits = ref_words = 0
    starts: list[float] = []
    for song_id in scored:
        hyp = asr[asr["song_id"] == song_id]
        ref = words(known[song_id])
        edits += align(ref, words(" ".join(hyp.sort_values("line")["text"])))[0]
        ref_words += len(ref)
        timed = truth_lines[truth_lines["song_id"] == song_id]
        if len(timed):
            starts += line_start_errors(timed, hyp)
    note = "corpus lyrics as reference, lower-cased, punctuation removed"
    rows.append({"step": STEP, "metric": "wer", "value": edits / max(ref_words, 1), "n": len(scored), "note": note})
    median = float(np.median(starts)) if starts else np.nan
    note = "median |line start error| s over truth lines whose first word aligns with an ASR line's first word"
    rows.append(
        {"step": STEP, "metric": "line_start_abs_err_median_s", "value": median, "n": len(starts), "note": note}
    )
    return rows


# ---------------------------------------------------------------- driver


def run(
    cfg: AsrConfig,
    tracks_path: Path | str,
    stems_dir: Path | str | None,
    transcriber: Transcriber | None = None,
    threads: int = 1,
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """Lyrics for every song: (lyrics table, quality rows, rejection rows); ASR uses `threads` torch threads."""
    tracks = load_tracks(tracks_path)
    truth_lines = load_truth(tracks_path, "lyric_lines")
    lines_by_song = dict(tuple(truth_lines.groupby("song_id")))
    rows: list[dict] = []
    rejected: list[dict] = []
    for track in tracks.itertuples(index=False):
        corpus = corpus_lines(track, lines_by_song.get(track.song_id) if track.lyrics_timed else None)
        if cfg.checkpoint and not (cfg.prefer_truth and corpus):
            if stems_dir is None:
                raise ValueError("an ASR checkpoint is set but no stems folder was given")
            if transcriber is None:
                transcriber = load_whisper(cfg)
            path = Path(stems_dir) / track.song_id / VOCAL_STEM
            try:
                sr = transcriber.sampling_rate  # type: ignore[attr-defined]
                started = time.perf_counter()
                with torch_threads(threads):
                    chunks = transcriber(read_mono(path, sr), sr)
                log.info("%s: %d ASR chunks in %.1f s", track.song_id, len(chunks), time.perf_counter() - started)
            except Exception as exc:  # a song ASR cannot process is rejected, the run goes on
                reason = "missing_audio" if not path.is_file() else "asr_failed"
                rejected.append({"song_id": track.song_id, "step": STEP, "reason": reason, "detail": f"{path}: {exc}"})
                continue
            rows += chunks_to_lines(track.song_id, chunks, float(track.duration_s))
        else:
            rows += corpus or [none_row(track.song_id)]
    lyrics = frame(rows, LYRICS_COLUMNS)
    return lyrics, quality_rows(lyrics, tracks, truth_lines, cfg), rejected


def _parser() -> argparse.ArgumentParser:
    p = step_parser("python -m musicot.prep.lyrics", __doc__.splitlines()[0])
    p.add_argument("--stems", type=Path, help="folder of <song_id>/vocals.flac (needed when ASR runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for Whisper")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the quality rows."""
    a = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = build(AsrConfig, load_config(a.config)["prep"]["asr"])
    lyrics, quality, rejected = run(cfg, a.tracks, a.stems, threads=a.threads)
    write_step_outputs(a, lyrics, quality, rejected)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
