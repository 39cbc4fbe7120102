"""Song sections (intro / verse / chorus / bridge / outro) with start and end times, scored against truth.

    python -m musicot.prep.structure --config CFG --tracks results/corpus/tracks.parquet \
        --out results/prep/structure.parquet --quality results/prep/structure_quality.csv \
        --rejected results/prep/structure_rejected.tsv --workers 2 [--numba-cache DIR]

The paper labels sections with All-in-One (method "allin1", an optional extra). The method that
always runs is Foote's novelty segmentation on beat-synchronous features (musicot.prep.beats):

* boundaries: cosine self-similarity of timbre and loudness (MFCC 1..19 + log RMS per beat),
  Gaussian-tapered checkerboard kernel of `kernel_beats` along the diagonal, novelty peaks above
  NOVELTY_THRESHOLD x the song's maximum, strongest first, none closer than `min_section_s` to
  another or to the song's ends. Chroma is left out here: chord changes inside a section read
  as boundaries (on the built-in corpus adding it gave 6.5 instead of 5.5 segments per song
  and boundary F@0.5 0.62 instead of 0.67);
* labels: segment means of chroma + MFCC clustered into `n_labels` groups (Ward). Names are a
  heuristic: first segment intro, last outro; among the rest, the loudest cluster (ties: the
  most repeated) is the chorus — the densest, loudest part of a pop song (on the built-in
  corpus this names 68% of the time right, most-repeated-first 65%); other clusters that
  first occur before the first chorus are verses, those first heard after it bridges.

Quality: boundary hit rates (mir_eval.segment.detection, windows 0.5 s and 3 s, trim=True so the
song's start and end, which every method gets right, are not counted), pairwise label F and the
share of time whose name matches truth — each a mean over songs with truth sections.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mir_eval
import numpy as np
import pandas as pd
import soundfile as sf
from sklearn.cluster import AgglomerativeClustering

from musicot.config import build, load_config
from musicot.data.table import SECTION_COLUMNS, frame
from musicot.prep import beats
from musicot.prep.common import load_tracks, load_truth, write_step_outputs

STEP = "structure"
LABELS = ("intro", "verse", "chorus", "bridge", "outro")
NOVELTY_THRESHOLD = 0.2  # boundary peaks must reach this fraction of the song's highest novelty
KERNEL_TAPER = 0.5  # Gaussian taper std of the checkerboard kernel, as a fraction of its half width
DETECTION_WINDOWS = (0.5, 3.0)  # seconds, the MIREX boundary windows
PAIRWISE_FRAME_S = 0.1  # frame size of the pairwise label metric and label accuracy
EPS = 1e-8
ALLIN1_LABELS = {  # All-in-One's Harmonix labels -> ours ("start"/"end" are the silence around a song)
    "start": "intro",
    "intro": "intro",
    "verse": "verse",
    "chorus": "chorus",
    "bridge": "bridge",
    "break": "bridge",
    "inst": "bridge",
    "solo": "bridge",
    "outro": "outro",
    "end": "outro",
}
ALLIN1_INSTALL = (
    "method 'allin1' needs the optional All-in-One extra, which is not installed: "
    "pip install torch natten (a build matching your torch/CUDA), "
    "pip install git+https://github.com/CPJKU/madmom, pip install allin1 demucs; "
    "its checkpoint (allin1_model, e.g. harmonix-all) must be in the Hugging Face cache since runs are offline"
)


@dataclass(frozen=True)
class StructureConfig:
    """`prep.structure` of the config schema (defaults live there)."""

    method: str = "librosa"
    allin1_model: str = "harmonix-all"
    sample_rate: int = 22050
    kernel_beats: int = 16
    min_section_s: float = 3.0
    n_labels: int = 4


def _zscore(x: np.ndarray) -> np.ndarray:
    """Each row to zero mean and unit variance over time, then scaled so the block has unit total weight."""
    x = np.atleast_2d(x)
    z = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + EPS)
    return z / np.sqrt(len(z))


def checkerboard_kernel(width: int) -> np.ndarray:
    """Foote's checkerboard kernel (`width` x `width`, even), Gaussian-tapered: +1 within, -1 across."""
    half = max(1, width // 2)
    t = np.arange(-half, half) + 0.5
    taper = np.exp(-0.5 * (t / (KERNEL_TAPER * half)) ** 2)
    return np.outer(np.sign(t) * taper, np.sign(t) * taper)


def novelty(ssm: np.ndarray, width: int) -> np.ndarray:
    """Checkerboard correlation along the diagonal; at the edges normalised by the kernel part inside the song."""
    kernel = checkerboard_kernel(width)
    half = len(kernel) // 2
    padded = np.pad(ssm, half)
    inside = np.pad(np.ones_like(ssm), half)
    out = np.zeros(len(ssm))
    for i in range(len(ssm)):
        window = slice(i, i + 2 * half)
        mass = (np.abs(kernel) * inside[window, window]).sum()
        out[i] = (kernel * padded[window, window]).sum() / mass
    return np.maximum(out, 0.0)


def pick_boundaries(curve: np.ndarray, times: np.ndarray, duration: float, min_gap: float) -> np.ndarray:
    """Times of novelty peaks above NOVELTY_THRESHOLD x max, strongest first, `min_gap` apart and from the ends."""
    peaks = np.flatnonzero((curve[1:-1] > curve[:-2]) & (curve[1:-1] >= curve[2:])) + 1
    peaks = peaks[curve[peaks] > NOVELTY_THRESHOLD * curve.max()] if len(peaks) else peaks
    kept: list[float] = []
    for p in peaks[np.argsort(-curve[peaks], kind="stable")]:
        t = float(times[p])
        if min_gap <= t <= duration - min_gap and all(abs(t - k) >= min_gap for k in kept):
            kept.append(t)
    return np.array(sorted(kept))


def name_segments(clusters: np.ndarray, loudness: np.ndarray) -> list[str]:
    """Section names from segment clusters and mean loudness (the heuristic in the module docstring)."""
    n = len(clusters)
    if n == 1:
        return ["verse"]
    names = [""] * n
    middle = list(range(1, n - 1)) if n >= 3 else list(range(n))
    if n >= 3:
        names[0], names[-1] = "intro", "outro"
    ids = sorted({int(clusters[i]) for i in middle})
    count = {c: sum(clusters[i] == c for i in middle) for c in ids}
    loud = {c: float(np.mean([loudness[i] for i in middle if clusters[i] == c])) for c in ids}
    chorus = max(ids, key=lambda c: (loud[c], count[c]))
    first_chorus = min(i for i in middle if clusters[i] == chorus)
    first_seen = {c: min(i for i in middle if clusters[i] == c) for c in ids}
    for i in middle:
        c = int(clusters[i])
        names[i] = "chorus" if c == chorus else ("verse" if first_seen[c] < first_chorus else "bridge")
    if "verse" not in names and len(ids) > 1:  # chorus first: the most repeated other cluster is the verse
        verse = max((c for c in ids if c != chorus), key=lambda c: (count[c], -first_seen[c]))
        names = ["verse" if i in middle and clusters[i] == verse else name for i, name in enumerate(names)]
    return names


def segment_features(features: beats.SongFeatures, cfg: StructureConfig) -> list[tuple[str, float, float]]:
    """(label, start, end) sections of one song from its features (the librosa method)."""
    import librosa  # here, not at the top: --numba-cache must be set before librosa loads numba

    bounds = features.beat_bounds()
    timbre = np.vstack([_zscore(features.mfcc[1:]), _zscore(np.log(features.rms + EPS))])
    per_beat = librosa.util.sync(timbre, bounds, aggregate=np.mean)
    unit = per_beat / (np.linalg.norm(per_beat, axis=0, keepdims=True) + EPS)
    curve = novelty(unit.T @ unit, cfg.kernel_beats)
    cuts = pick_boundaries(curve, features.frame_times(bounds[:-1]), features.duration_s, cfg.min_section_s)
    edges = np.concatenate([[0.0], cuts, [features.duration_s]])

    content = np.vstack([_zscore(features.chroma), _zscore(features.mfcc[1:])])
    frames = np.clip((edges * features.fps).round().astype(int), 0, content.shape[1])
    spans = [(a, max(b, a + 1)) for a, b in itertools.pairwise(frames)]
    means = np.array([content[:, a:b].mean(axis=1) for a, b in spans])
    loudness = np.array([np.log(features.rms[a:b] + EPS).mean() for a, b in spans])
    k = min(cfg.n_labels, len(spans))
    clusters = AgglomerativeClustering(n_clusters=k).fit_predict(means) if k > 1 else np.zeros(len(spans), int)
    names = name_segments(clusters, loudness)
    return [(names[i], float(edges[i]), float(edges[i + 1])) for i in range(len(names))]


def _rows(song_id: str, sections: Sequence[tuple[str, float, float]]) -> list[dict]:
    return [dict(song_id=song_id, index=i, label=lab, start=s, end=e) for i, (lab, s, e) in enumerate(sections)]


def structure_song(track: Mapping[str, Any], cfg: StructureConfig) -> list[dict]:
    """Section rows (SECTION_COLUMNS) of one song by the librosa method; raises if its audio fails."""
    features, _, _ = beats.analyse_file(track["audio_path"], cfg.sample_rate)
    return _rows(str(track["song_id"]), segment_features(features, cfg))


def allin1_sections(paths: Sequence[str], model: str) -> list[list[tuple[str, float, float]]]:
    """All-in-One sections per path (one batch: the model loads once), labels mapped to ours."""
    try:
        import allin1
    except ImportError as exc:
        raise RuntimeError(ALLIN1_INSTALL) from exc
    with tempfile.TemporaryDirectory() as scratch:  # its demixed stems and spectrograms, deleted after
        results = allin1.analyze(
            list(paths), model=model, demix_dir=Path(scratch) / "demix", spec_dir=Path(scratch) / "spec"
        )
    results = results if isinstance(results, list) else [results]  # one path -> one result, not a list
    return [
        [(ALLIN1_LABELS.get(s.label, "bridge"), float(s.start), float(s.end)) for s in r.segments if s.end > s.start]
        for r in results
    ]


def boundary_scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Boundary precision/recall/F at each DETECTION_WINDOWS (trim=True: song start/end not counted)."""
    out = {}
    for window in DETECTION_WINDOWS:
        p, r, f = mir_eval.segment.detection(reference, estimate, window=window, trim=True)
        out |= {f"boundary_p@{window:g}": p, f"boundary_r@{window:g}": r, f"boundary_f@{window:g}": f}
    return out


def label_scores(ref: np.ndarray, ref_labels: list[str], est: np.ndarray, est_labels: list[str]) -> dict[str, float]:
    """Pairwise label precision/recall/F and the share of time whose label equals truth's, over truth's span."""
    est, est_labels = mir_eval.util.adjust_intervals(est, est_labels, t_min=0.0, t_max=float(ref[-1, 1]))
    p, r, f = mir_eval.segment.pairwise(ref, ref_labels, est, est_labels, frame_size=PAIRWISE_FRAME_S)
    grid = np.arange(0.0, ref[-1, 1], PAIRWISE_FRAME_S)

    def at(intervals: np.ndarray, labels: list[str]) -> np.ndarray:
        return np.asarray(labels)[np.clip(np.searchsorted(intervals[:, 1], grid, side="right"), 0, len(labels) - 1)]

    accuracy = float(np.mean(at(ref, ref_labels) == at(est, est_labels)))
    return {"pairwise_p": p, "pairwise_r": r, "pairwise_f": f, "label_accuracy": accuracy}


def score_structure(estimate: pd.DataFrame, truth: pd.DataFrame) -> list[dict]:
    """Quality rows: mean over songs with truth of boundary and label scores, plus segments per song."""
    per_song = []
    for song_id, est in estimate.groupby("song_id", sort=True):
        ref = truth[truth["song_id"] == song_id].sort_values("start")
        if ref.empty:
            continue
        est = est.sort_values("start")
        ref_iv, est_iv = ref[["start", "end"]].to_numpy(float), est[["start", "end"]].to_numpy(float)
        scores = boundary_scores(ref_iv, est_iv)
        scores |= label_scores(ref_iv, ref["label"].tolist(), est_iv, est["label"].tolist())
        per_song.append(scores)
    n_songs = estimate["song_id"].nunique()
    rows = [
        dict(step=STEP, metric="segments_per_song", value=len(estimate) / max(1, n_songs), n=n_songs, note=""),
    ]
    for metric in per_song[0] if per_song else []:
        value = float(np.mean([s[metric] for s in per_song]))
        note = "trim=True: song start/end not counted" if metric.startswith("boundary") else "over truth's span"
        rows.append(dict(step=STEP, metric=metric, value=value, n=len(per_song), note=f"mean over songs; {note}"))
    return rows


_CONTEXT: dict[str, Any] = {}  # cfg for forked workers


def _structure_one(track: dict) -> tuple[list[dict], dict | None]:
    try:
        return structure_song(track, _CONTEXT["cfg"]), None
    except Exception as exc:  # one bad song becomes a rejection, never a failed run
        reason = "missing_audio" if not Path(str(track["audio_path"])).is_file() else "analysis_failed"
        return [], dict(song_id=track["song_id"], step=STEP, reason=reason, detail=f"{type(exc).__name__}: {exc}")


def run(tracks: pd.DataFrame, cfg: StructureConfig, workers: int = 1) -> tuple[pd.DataFrame, list[dict]]:
    """(structure table, rejection rows) for every song of `tracks`."""
    if cfg.method == "allin1":
        rejected, ok = [], []
        for track in tracks.to_dict("records"):  # a bad file would fail the whole All-in-One batch
            try:
                sf.info(str(track["audio_path"]))
                ok.append(track)
            except Exception as exc:
                reason = "missing_audio" if not Path(str(track["audio_path"])).is_file() else "unreadable"
                rejected.append(dict(song_id=track["song_id"], step=STEP, reason=reason, detail=str(exc)))
        sections = allin1_sections([str(t["audio_path"]) for t in ok], cfg.allin1_model) if ok else []
        rows = [r for t, s in zip(ok, sections, strict=True) for r in _rows(str(t["song_id"]), s)]
        return frame(rows, SECTION_COLUMNS), rejected
    _CONTEXT["cfg"] = cfg
    results = beats.map_songs(_structure_one, tracks.to_dict("records"), workers, cfg.sample_rate)
    table = frame([row for rows, _ in results for row in rows], SECTION_COLUMNS)
    return table, [rej for _, rej in results if rej is not None]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the quality rows."""
    a = beats.parse_step_args(argv, "python -m musicot.prep.structure", __doc__.splitlines()[0])
    cfg = build(StructureConfig, load_config(a.config)["prep"]["structure"])
    started = time.perf_counter()
    tracks = load_tracks(a.tracks)
    table, rejected = run(tracks, cfg, a.workers)
    truth_path = Path(a.tracks).parent / "sections.parquet"
    truth = load_truth(a.tracks, "sections") if truth_path.is_file() else frame([], SECTION_COLUMNS)
    write_step_outputs(a, table, score_structure(table, truth), rejected)
    beats.log_step_time(STEP, len(tracks), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
