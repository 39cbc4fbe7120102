"""Zero-shot CLAP tags for every song, and the inference-time tag selection of Eq. 5, both scored.

    python -m musicot.clap.tags --config CFG --tracks results/corpus/tracks.parquet \
        --prep-tags results/prep/tags.parquet --embeddings results/clap/embeddings \
        --model results/clap/model --out results/clap/tags.parquet --quality results/clap/tags_quality.csv

* Zero-shot tags (the prep tags step's `TagScorer` hook, filled from cached embeddings): a
  song's audio embedding is the re-normalised mean of its window embeddings; each tag family
  of the vocabulary keeps its `ZERO_SHOT_TOP` best tags by cosine with the tag's text. Rows
  are written for every song and family; `fills_gap` marks those the song's metadata lacks,
  i.e. the rows the LM's tag condition takes from CLAP (an ingested corpus without
  captions). Quality: top-1 accuracy per family against the metadata of the held-out songs.
* Eq. 5: at inference the LM's tags are every vocabulary tag whose CLAP text embedding has
  cosine > delta with the prompt's. The paper does not give delta and its scale belongs to the
  CLAP model, so with ``tag_selection.delta: auto`` it is calibrated here: the delta of best mean
  F1 against the metadata tags, with the validation songs' captions as prompts, written to
  ``--selection`` (tag_selection.json beside the CLAP model's outputs; generation reads it). The
  selection is then scored on the reference songs' captions, which the calibration never saw:
  how many tags are selected, and their precision and recall.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.clap.model import load, unit_mean
from musicot.config import load_config
from musicot.prep.common import load_tracks, write_quality
from musicot.prep.tags import FAMILIES, ZERO_SHOT_TOP, select_tags

log = logging.getLogger("musicot.clap")

STEP = "clap_tags"
COLUMNS = {
    "song_id": "string",
    "family": "string",
    "tag": "string",
    "value": "float64",
    "rank": "int64",
    "fills_gap": "bool",
}
HELD_OUT = ("valid", "reference")
CALIBRATION_SPLIT, SCORED_SPLIT = "valid", "reference"
# Cosines of unit vectors; 0.01 steps are finer than the F1 curve of a few dozen prompts can resolve.
DELTA_GRID = np.round(np.arange(-1.0, 1.0, 0.01), 2)


def song_embeddings(windows: pd.DataFrame, emb: np.ndarray) -> dict[str, np.ndarray]:
    """Re-normalised mean window embedding per song."""
    return {str(song_id): unit_mean(emb[idx]) for song_id, idx in windows.groupby("song_id", sort=True).indices.items()}


def tag_embeddings(text: pd.DataFrame, text_emb: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """family -> {tag: text embedding} from the text table's ``tag:<family>`` rows."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, row in enumerate(text.itertuples(index=False)):
        if str(row.kind).startswith("tag:"):
            out.setdefault(str(row.kind)[4:], {})[str(row.text)] = text_emb[i]
    return out


def zero_shot(
    songs: Mapping[str, np.ndarray], tags: Mapping[str, Mapping[str, np.ndarray]], known: Mapping[str, set[str]]
) -> pd.DataFrame:
    """Top `ZERO_SHOT_TOP` tags per family for every song; `known` = families each song's metadata has."""
    rows = []
    for song_id, vector in songs.items():
        for family in FAMILIES:
            if family not in tags:
                continue
            names = list(tags[family])
            sims = np.stack([tags[family][n] for n in names]) @ vector
            for rank, i in enumerate(np.argsort(-sims, kind="stable")[: ZERO_SHOT_TOP[family]]):
                rows.append(
                    dict(
                        song_id=song_id,
                        family=family,
                        tag=names[i],
                        value=float(sims[i]),
                        rank=rank,
                        fills_gap=family not in known.get(song_id, set()),
                    )
                )
    return pd.DataFrame(rows, columns=list(COLUMNS)).astype(COLUMNS)


def zero_shot_accuracy(table: pd.DataFrame, truth: pd.DataFrame, songs: Sequence[str]) -> list[dict]:
    """Top-1 accuracy per single-valued family (genre, subgenre, mood, gender) on `songs`, with chance."""
    rows = []
    for family in ("genre", "subgenre", "mood", "gender"):
        want = truth[(truth["family"] == family) & truth["song_id"].isin(songs)].groupby("song_id")["tag"].first()
        got = table[(table["family"] == family) & (table["rank"] == 0)].set_index("song_id")["tag"]
        common = [s for s in want.index if s in got.index]
        if not common:
            continue
        acc = float(np.mean([got[s] == want[s] for s in common]))
        rows.append(dict(step=STEP, metric=f"zero_shot_acc_{family}", value=acc, n=len(common), note="top-1"))
    return rows


def _mean(values: list) -> float:
    return float(np.mean(values)) if values else float("nan")


def selection_scores(chosen: Sequence[set[str]], truth: Sequence[set[str]]) -> dict[str, float]:
    """Mean tags selected, precision (prompts with a selection), recall (prompts with true tags) and F1 per prompt.

    F1 counts every prompt, 0 where nothing right was selected, so an empty selection is not rewarded."""
    n_sel, precision, recall, f1 = [], [], [], []
    for got, want in zip(chosen, truth, strict=True):
        hit = len(got & want)
        n_sel.append(len(got))
        if got:
            precision.append(hit / len(got))
        if want:
            recall.append(hit / len(want))
        f1.append(2 * hit / (len(got) + len(want)) if got or want else 0.0)
    return dict(tags_selected=_mean(n_sel), precision=_mean(precision), recall=_mean(recall), f1=_mean(f1))


def _flat_tags(tags: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {t: e for family in FAMILIES for t, e in tags.get(family, {}).items()}


def _truth_sets(prompts: Mapping[str, np.ndarray], truth: pd.DataFrame, vocabulary: set[str]) -> list[set[str]]:
    return [set(truth.loc[truth["song_id"] == song_id, "tag"]) & vocabulary for song_id in prompts]


def calibrate_delta(
    prompts: Mapping[str, np.ndarray],
    tags: Mapping[str, Mapping[str, np.ndarray]],
    truth: pd.DataFrame,
    grid: Sequence[float] = tuple(DELTA_GRID),
) -> tuple[float, pd.DataFrame]:
    """The delta of best mean F1 over `grid` (ties: the larger delta, fewer tags), and the whole curve."""
    flat = _flat_tags(tags)
    if not prompts or not flat:
        raise ValueError("delta calibration needs at least one captioned song and one vocabulary tag")
    want = _truth_sets(prompts, truth, set(flat))
    names = list(flat)
    matrix = np.stack([flat[n] for n in names])
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-12)
    rows = []
    for prompt_vector, _ in zip(prompts.values(), want, strict=True):
        v = np.asarray(prompt_vector, dtype=np.float64)
        rows.append(matrix @ (v / max(np.linalg.norm(v), 1e-12)))
    sims = np.stack(rows)
    curve = []
    for delta in grid:
        chosen = [{names[j] for j in np.flatnonzero(s > delta)} for s in sims]
        curve.append(dict(delta=float(delta), **selection_scores(chosen, want)))
    table = pd.DataFrame(curve)
    best = table.loc[table["f1"] == table["f1"].max(), "delta"].max()
    return float(best), table


def eq5_scores(
    prompts: Mapping[str, np.ndarray],
    tags: Mapping[str, Mapping[str, np.ndarray]],
    truth: pd.DataFrame,
    delta: float,
    note: str = "prompt = song caption",
) -> list[dict]:
    """Mean number of tags selected by Eq. 5 per prompt, and their precision/recall/F1 against the metadata tags."""
    flat = _flat_tags(tags)
    chosen = [set(select_tags(prompt, flat, delta)) for prompt in prompts.values()]
    scores = selection_scores(chosen, _truth_sets(prompts, truth, set(flat)))
    note = f"delta {delta:g}; {note}"
    names = {"tags_selected": "eq5_tags_selected", "precision": "eq5_precision", "recall": "eq5_recall", "f1": "eq5_f1"}
    return [dict(step=STEP, metric=names[k], value=scores[k], n=len(chosen), note=note) for k in names]


def run(
    tracks: pd.DataFrame,
    prep_tags: pd.DataFrame,
    embeddings: Path,
    model_dir: Path,
    delta: float | str,
) -> tuple[pd.DataFrame, list[dict], dict]:
    """(zero-shot tag table, quality rows, the Eq. 5 selection: delta and how it was chosen and scored).

    `delta` "auto" calibrates it on the calibration split's captions; a number is used as given."""
    windows = pd.read_parquet(embeddings / "windows.parquet")
    emb = np.load(embeddings / "windows.npy")
    text = pd.read_parquet(embeddings / "text.parquet")
    tags = tag_embeddings(text, np.load(embeddings / "text.npy"))
    songs = song_embeddings(windows, emb)
    metadata = prep_tags[prep_tags["source"] == "metadata"]
    known = {str(s): set(g["family"]) for s, g in metadata.groupby("song_id")}
    table = zero_shot(songs, tags, known)
    held_out = tracks[tracks["split"].isin(HELD_OUT)]
    quality = zero_shot_accuracy(table, metadata, list(held_out["song_id"].astype(str)))
    prompted = held_out[held_out["caption"].fillna("").astype(str).str.len() > 0]
    selection = dict(delta=None if delta == "auto" else float(delta), source="config")
    if len(prompted):
        model = load(model_dir)
        captions = model.embed_text(list(prompted["caption"]))
        by_split = {
            split: {
                str(s): e
                for s, e, sp in zip(prompted["song_id"], captions, prompted["split"], strict=True)
                if sp == split
            }
            for split in HELD_OUT
        }
        if delta == "auto" and not by_split[CALIBRATION_SPLIT]:
            selection["source"] = f"not calibrated: no {CALIBRATION_SPLIT} song has a caption; set tag_selection.delta"
            log.warning("Eq. 5 delta: %s (generation needs it)", selection["source"])
        elif delta == "auto":
            best, curve = calibrate_delta(by_split[CALIBRATION_SPLIT], tags, metadata)
            at = curve.loc[curve["delta"] == best].iloc[0]
            selection = dict(
                delta=best,
                source=f"calibrated: best mean F1 on {len(by_split[CALIBRATION_SPLIT])} {CALIBRATION_SPLIT} captions",
                calibration={k: float(at[k]) for k in ("f1", "precision", "recall", "tags_selected")},
            )
            n = len(by_split[CALIBRATION_SPLIT])
            quality.append(dict(step=STEP, metric="eq5_delta", value=best, n=n, note=selection["source"]))
        scored = SCORED_SPLIT if by_split[SCORED_SPLIT] else CALIBRATION_SPLIT
        if selection["delta"] is not None:
            note = f"prompt = {scored} song caption"
            quality += eq5_scores(by_split[scored], tags, metadata, selection["delta"], note)
            selection["scored_on"] = scored
    elif delta == "auto":
        selection["source"] = "not calibrated: no held-out song has a caption; set tag_selection.delta"
        log.warning("Eq. 5 delta: %s (generation needs it)", selection["source"])
    gaps = int(table.loc[table["fills_gap"], "song_id"].nunique())
    quality.append(dict(step=STEP, metric="songs_with_gaps_filled", value=float(gaps), n=len(songs), note="all splits"))
    return table, quality, selection


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config YAML path or inline JSON")
    p.add_argument("--tracks", type=Path, required=True)
    p.add_argument("--prep-tags", type=Path, required=True, help="tags.parquet of the prep tags step")
    p.add_argument("--embeddings", type=Path, required=True, help="folder written by `musicot.clap.train embed`")
    p.add_argument("--model", type=Path, required=True, help="folder written by `musicot.clap.train train`")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quality", type=Path, required=True)
    p.add_argument("--selection", type=Path, required=True, help="tag_selection.json: the Eq. 5 delta generation uses")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(a.config)
    table, quality, selection = run(
        load_tracks(a.tracks), pd.read_parquet(a.prep_tags), a.embeddings, a.model, config["tag_selection"]["delta"]
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(a.out, index=False)
    write_quality(quality, a.quality)
    a.selection.write_text(json.dumps(selection, indent=2))
    print(json.dumps({r["metric"]: r["value"] for r in quality}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
