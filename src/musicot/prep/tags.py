"""MIR tags per song in the paper's families (genre, sub-genre, mood, gender, instrument) plus tempo and key.

    python -m musicot.prep.tags --config CFG --tracks results/corpus/tracks.parquet \
        --out results/prep/tags.parquet --quality results/prep/tags_quality.csv \
        --rejected results/prep/tags_rejected.tsv --workers 2 [--numba-cache DIR]

Where a family's tags come from, in order of trust: the corpus metadata (source "metadata",
value 1.0); a zero-shot `TagScorer` over the vocabulary (source "zero_shot", value = score;
the CLAP stage supplies one); otherwise nothing — an unknown family gets no rows and is counted
in quality, never guessed. Tempo and key are always measured (source "dsp"): tempo from the
onset autocorrelation (musicot.prep.beats), key by Krumhansl-Schmuckler profile correlation
on the song's mean chroma. Both are scored against the corpus truth (MIREX Acc1/Acc2, exact
and weighted key score). `tag_vocabulary.yaml` beside this module is the one vocabulary the
LM's tag tokens and inference-time tag selection (`select_tags`, the paper's Eq. 5) share.
"""

from __future__ import annotations

import functools
import importlib.resources
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mir_eval
import numpy as np
import pandas as pd
import yaml

from musicot.config import build, load_config
from musicot.data.styles import NOTE_NAMES
from musicot.data.table import frame
from musicot.prep import beats
from musicot.prep.common import load_tracks, write_step_outputs

STEP = "tags"
FAMILIES = ("genre", "subgenre", "mood", "gender", "instrument")
TAG_COLUMNS = {"song_id": "string", "family": "string", "tag": "string", "value": "float64", "source": "string"}
GENDER_TAGS = {"male": "male vocals", "female": "female vocals", "none": "instrumental"}  # corpus value -> tag
UNKNOWN_VALUES = frozenset({"", "unknown"})  # metadata strings that mean "not known"
ZERO_SHOT_TOP = {"genre": 1, "subgenre": 1, "mood": 1, "gender": 1, "instrument": 3}  # tags kept per family
TEMPO_MULTIPLES = (2.0, 0.5, 3.0, 1.0 / 3.0)  # octave-type errors MIREX Acc2 forgives
# Key profiles (major, minor), tonic first. "krumhansl": Krumhansl & Kessler's (1982) probe-tone
# ratings, the Krumhansl-Schmuckler default. "albrecht": Albrecht & Shanahan's (2013) corpus
# profiles, kept as an alternative: on the built-in corpus they score 0.72 exact vs 0.52, since
# the major-seventh chords there pull K-K towards the mediant minor (not in the schema yet).
KEY_PROFILES = {
    "krumhansl": (
        np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
        np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
    ),
    "albrecht": (
        np.array([0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]),
        np.array([0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]),
    ),
}


@dataclass(frozen=True)
class TagsConfig:
    """`prep.tags` of the config schema (defaults live there)."""

    sample_rate: int = 22050
    tempo_tolerance: float = 0.04
    key_profile: str = "krumhansl"


class TagScorer(Protocol):
    """Zero-shot tagger: a score per candidate tag (higher = more likely), e.g. CLAP audio-text similarity."""

    def score(self, audio: np.ndarray, sr: int, tags: list[str]) -> dict[str, float]: ...


@functools.cache
def _vocabulary() -> tuple[tuple[str, tuple[str, ...]], ...]:
    text = importlib.resources.files("musicot.prep").joinpath("tag_vocabulary.yaml").read_text()
    raw = yaml.safe_load(text) or {}
    missing = [f for f in FAMILIES if not raw.get(f)]
    if missing:
        raise ValueError(f"tag_vocabulary.yaml lacks families {missing}")
    for family, tags in raw.items():
        if len(set(tags)) != len(tags) or any(t != str(t).strip().lower() for t in tags):
            raise ValueError(f"tag_vocabulary.yaml: family {family} has duplicate or non-normalised tags")
    return tuple((family, tuple(str(t) for t in raw[family])) for family in FAMILIES)


def load_vocabulary() -> dict[str, list[str]]:
    """The tag vocabulary: family -> tags, in file order (a fresh copy each call)."""
    return {family: list(tags) for family, tags in _vocabulary()}


def select_tags(prompt_embedding: np.ndarray, tag_embeddings: Mapping[str, np.ndarray], delta: float) -> list[str]:
    """Tags whose embedding has cosine similarity > delta with the prompt's, most similar first (Eq. 5).

    A zero vector has similarity 0 with everything; ties keep the mapping's order.
    """
    if not tag_embeddings:
        return []
    names = list(tag_embeddings)
    matrix = np.stack([np.asarray(tag_embeddings[n], dtype=np.float64) for n in names])
    prompt = np.asarray(prompt_embedding, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(prompt)
    sims = np.divide(matrix @ prompt, norms, out=np.zeros(len(names)), where=norms > 0)
    order = np.argsort(-sims, kind="stable")
    return [names[i] for i in order if sims[i] > delta]


def estimate_key(chroma: np.ndarray, profile: str = "krumhansl") -> tuple[str, float]:
    """Krumhansl-Schmuckler: the key ("A minor") whose rotated profile best correlates with the mean chroma."""
    mean = np.asarray(chroma, dtype=np.float64)
    mean = mean.mean(axis=1) if mean.ndim == 2 else mean
    if np.ptp(mean) == 0:
        raise ValueError("flat chroma: no pitch content to estimate a key from")
    best = ("", -np.inf)
    major, minor = KEY_PROFILES[profile]
    for mode, weights in (("major", major), ("minor", minor)):
        for tonic in range(12):
            r = float(np.corrcoef(mean, np.roll(weights, tonic))[0, 1])
            if r > best[1]:
                best = (f"{NOTE_NAMES[tonic]} {mode}", r)
    return best


def metadata_tags(track: Mapping[str, Any]) -> dict[str, list[str]]:
    """Tags per family from a tracks-table row; families with unknown metadata are absent."""
    out: dict[str, list[str]] = {}
    for family in ("genre", "subgenre", "mood"):
        value = str(track.get(family) or "").strip().lower()
        if value not in UNKNOWN_VALUES:
            out[family] = [value]
    gender = str(track.get("gender") or "").strip().lower()
    if gender not in UNKNOWN_VALUES:
        out["gender"] = [GENDER_TAGS.get(gender, gender)]
    instruments = [t.strip().lower() for t in str(track.get("instruments") or "").split(",")]
    instruments = list(dict.fromkeys(t for t in instruments if t not in UNKNOWN_VALUES))
    if instruments:
        out["instrument"] = instruments
    return out


def tag_song(
    track: Mapping[str, Any],
    cfg: TagsConfig,
    scorer: TagScorer | None = None,
    vocabulary: Mapping[str, list[str]] | None = None,
) -> list[dict]:
    """All tag rows of one song (TAG_COLUMNS); raises if its audio cannot be read or analysed."""
    song_id = str(track["song_id"])
    features, mono, file_sr = beats.analyse_file(track["audio_path"], cfg.sample_rate)
    meta = metadata_tags(track)
    rows = [dict(song_id=song_id, family=f, tag=t, value=1.0, source="metadata") for f, ts in meta.items() for t in ts]
    known = {r["family"] for r in rows}
    if scorer is not None:
        vocabulary = vocabulary or load_vocabulary()
        for family in FAMILIES:
            if family in known:
                continue
            scores = scorer.score(mono, file_sr, list(vocabulary[family]))
            top = sorted(scores.items(), key=lambda kv: -kv[1])[: ZERO_SHOT_TOP[family]]
            rows += [dict(song_id=song_id, family=family, tag=t, value=float(s), source="zero_shot") for t, s in top]
    tempo = features.tempo_bpm
    rows.append(dict(song_id=song_id, family="tempo", tag=f"{round(tempo)}", value=tempo, source="dsp"))
    key, corr = estimate_key(features.chroma, cfg.key_profile)
    rows.append(dict(song_id=song_id, family="key", tag=key, value=corr, source="dsp"))
    return rows


def tempo_accuracy(estimate: float, reference: float, tolerance: float) -> tuple[bool, bool]:
    """MIREX (Acc1, Acc2): within `tolerance` (relative) of the reference; Acc2 also of 2x, 1/2x, 3x, 1/3x it."""
    acc1 = abs(estimate - reference) <= tolerance * reference
    acc2 = acc1 or any(abs(estimate - m * reference) <= tolerance * m * reference for m in TEMPO_MULTIPLES)
    return bool(acc1), bool(acc2)


def _family_value(tags: pd.DataFrame, family: str) -> pd.Series:
    sub = tags[tags["family"] == family]
    return sub.drop_duplicates("song_id").set_index("song_id")["value" if family == "tempo" else "tag"]


def score_tags(tags: pd.DataFrame, tracks: pd.DataFrame, cfg: TagsConfig) -> list[dict]:
    """Quality rows: tempo Acc1/Acc2 and key exact/weighted against truth, unknown families, out-of-vocabulary tags."""
    rows: list[dict] = []
    truth = tracks.set_index("song_id")
    tempo = _family_value(tags, "tempo")
    ref_tempo = truth["tempo_bpm"].reindex(tempo.index).astype(float).dropna()
    ref_tempo = ref_tempo[ref_tempo > 0]
    if len(ref_tempo):
        acc = np.array([tempo_accuracy(float(tempo[s]), float(r), cfg.tempo_tolerance) for s, r in ref_tempo.items()])
        note = f"within {cfg.tempo_tolerance:.0%}; Acc2 also x2, x1/2, x3, x1/3"
        rows += [
            dict(step=STEP, metric="tempo_acc1", value=acc[:, 0].mean(), n=len(acc), note=note),
            dict(step=STEP, metric="tempo_acc2", value=acc[:, 1].mean(), n=len(acc), note=note),
        ]
    key = _family_value(tags, "key")
    ref_key = truth["key"].reindex(key.index).fillna("").astype(str)
    ref_key = ref_key[ref_key.str.strip() != ""]
    if len(ref_key):
        weighted = [mir_eval.key.weighted_score(r, str(key[s])) for s, r in ref_key.items()]
        exact = [str(key[s]) == r for s, r in ref_key.items()]
        rows += [
            dict(step=STEP, metric="key_acc", value=float(np.mean(exact)), n=len(exact), note="exact match"),
            dict(step=STEP, metric="key_weighted", value=float(np.mean(weighted)), n=len(weighted), note="MIREX"),
        ]
    songs = tags["song_id"].unique()
    vocabulary = load_vocabulary()
    for family in FAMILIES:
        have = set(tags.loc[tags["family"] == family, "song_id"])
        unknown = sum(s not in have for s in songs)
        rows.append(dict(step=STEP, metric=f"unknown_{family}", value=float(unknown), n=len(songs), note="no tags"))
    listed = tags[tags["family"].isin(FAMILIES)]
    oov = sorted({f"{f}:{t}" for f, t in zip(listed["family"], listed["tag"], strict=True) if t not in vocabulary[f]})
    rows.append(dict(step=STEP, metric="oov_tags", value=float(len(oov)), n=len(songs), note=" ".join(oov)[:500]))
    return rows


_CONTEXT: dict[str, Any] = {}  # cfg/scorer for forked workers


def _tag_one(track: dict) -> tuple[list[dict], dict | None]:
    try:
        return tag_song(track, _CONTEXT["cfg"], _CONTEXT.get("scorer")), None
    except Exception as exc:  # one bad song becomes a rejection, never a failed run
        reason = "missing_audio" if not Path(str(track["audio_path"])).is_file() else "analysis_failed"
        return [], dict(song_id=track["song_id"], step=STEP, reason=reason, detail=f"{type(exc).__name__}: {exc}")


def run(
    tracks: pd.DataFrame, cfg: TagsConfig, workers: int = 1, scorer: TagScorer | None = None
) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    """(tags table, quality rows, rejection rows) for every song of `tracks`."""
    _CONTEXT.update(cfg=cfg, scorer=scorer)
    results = beats.map_songs(_tag_one, tracks.to_dict("records"), workers, cfg.sample_rate)
    table = frame([row for rows, _ in results for row in rows], TAG_COLUMNS)
    rejected = [rej for _, rej in results if rej is not None]
    return table, score_tags(table, tracks, cfg), rejected


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the quality rows."""
    a = beats.parse_step_args(argv, "python -m musicot.prep.tags", __doc__.splitlines()[0])
    cfg = build(TagsConfig, load_config(a.config)["prep"]["tags"])
    started = time.perf_counter()
    tracks = load_tracks(a.tracks)
    table, quality, rejected = run(tracks, cfg, a.workers)
    write_step_outputs(a, table, quality, rejected)
    beats.log_step_time(STEP, len(tracks), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
