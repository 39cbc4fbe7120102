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
  cosine > ``tag_selection.delta`` with the prompt's. Scored with the held-out songs' captions as
  prompts: how many tags are selected, and their precision and recall against the song's
  metadata tags.
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


def eq5_scores(
    prompts: Mapping[str, np.ndarray],
    tags: Mapping[str, Mapping[str, np.ndarray]],
    truth: pd.DataFrame,
    delta: float,
) -> list[dict]:
    """Mean number of tags selected by Eq. 5 per prompt, and their precision/recall against the metadata tags."""
    flat = {t: e for family in FAMILIES for t, e in tags.get(family, {}).items()}
    n_sel, precision, recall = [], [], []
    for song_id, prompt in prompts.items():
        chosen = set(select_tags(prompt, flat, delta))
        meta = set(truth.loc[truth["song_id"] == song_id, "tag"]) & set(flat)
        n_sel.append(len(chosen))
        if chosen:
            precision.append(len(chosen & meta) / len(chosen))
        if meta:
            recall.append(len(chosen & meta) / len(meta))
    note = f"delta {delta}; prompt = song caption"

    def mean(values: list) -> float:
        return float(np.mean(values)) if values else float("nan")

    return [
        dict(step=STEP, metric="eq5_tags_selected", value=mean(n_sel), n=len(n_sel), note=note),
        dict(step=STEP, metric="eq5_precision", value=mean(precision), n=len(precision), note=note),
        dict(step=STEP, metric="eq5_recall", value=mean(recall), n=len(recall), note=note),
    ]


def run(
    tracks: pd.DataFrame,
    prep_tags: pd.DataFrame,
    embeddings: Path,
    model_dir: Path,
    delta: float,
) -> tuple[pd.DataFrame, list[dict]]:
    """(zero-shot tag table, quality rows)."""
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
    if len(prompted):
        model = load(model_dir)
        prompts = dict(zip(prompted["song_id"].astype(str), model.embed_text(list(prompted["caption"])), strict=True))
        quality += eq5_scores(prompts, tags, metadata, delta)
    gaps = int(table.loc[table["fills_gap"], "song_id"].nunique())
    quality.append(dict(step=STEP, metric="songs_with_gaps_filled", value=float(gaps), n=len(songs), note="all splits"))
    return table, quality


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="config YAML path or inline JSON")
    p.add_argument("--tracks", type=Path, required=True)
    p.add_argument("--prep-tags", type=Path, required=True, help="tags.parquet of the prep tags step")
    p.add_argument("--embeddings", type=Path, required=True, help="folder written by `musicot.clap.train embed`")
    p.add_argument("--model", type=Path, required=True, help="folder written by `musicot.clap.train train`")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quality", type=Path, required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(a.config)
    table, quality = run(
        load_tracks(a.tracks), pd.read_parquet(a.prep_tags), a.embeddings, a.model, config["tag_selection"]["delta"]
    )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(a.out, index=False)
    write_quality(quality, a.quality)
    print(json.dumps({r["metric"]: r["value"] for r in quality}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
