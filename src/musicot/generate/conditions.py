"""What every system is conditioned on, computed once per prompt: CLAP text embedding, Eq. 5 tags, lyrics.

    python -m musicot.generate.conditions --config CFG --prompts workflow/resources/eval_prompts.jsonl \
        --clap results/clap/model --selection results/clap/tag_selection.json --tokenizer results/lm/tokenizer \
        --out results/generate/conditions

A user gives a text prompt and lyrics; the paper's LM also takes tags, chosen at inference by Eq. 5:
every vocabulary tag whose CLAP text embedding has cosine > delta with the prompt's. delta is the one
calibrated beside the CLAP model (`musicot.clap.tags`). The prompt file's own tags are never shown to
the LM: they are the truth the selection is scored against (precision / recall per prompt), so the
tag condition is exactly what a user who types only the prompt would get.

Writes `conditions.parquet` (one row per prompt, file order), `clap.npy` (the prompts' CLAP text
embeddings, same order) and `quality.csv` (the selection's precision and recall on the prompts).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.config import load_config
from musicot.generate.prompts import VOCABULARY_FAMILY, EvalPrompt, load_prompts
from musicot.prep.common import write_quality
from musicot.prep.tags import load_vocabulary, select_tags

log = logging.getLogger("musicot.generate")

STEP = "generate_conditions"
CONDITIONS_FILE, CLAP_FILE, QUALITY_FILE = "conditions.parquet", "clap.npy", "quality.csv"


@dataclass(frozen=True)
class Conditions:
    """The prompts' conditions as the generation stage reads them back."""

    table: pd.DataFrame  # prompt_id, prompt, lyrics, tags_text, lyrics_text, n_tags, tag_precision, tag_recall
    clap: np.ndarray  # (n, d) CLAP text embeddings, table order

    @classmethod
    def load(cls, folder: Path) -> Conditions:
        table = pd.read_parquet(Path(folder) / CONDITIONS_FILE)
        clap = np.load(Path(folder) / CLAP_FILE)
        if len(clap) != len(table):
            raise ValueError(f"{folder}: {len(table)} prompts but {len(clap)} CLAP embeddings")
        return cls(table, clap)


def read_delta(selection: Path) -> float:
    """delta from tag_selection.json (written by musicot.clap.tags)."""
    data = json.loads(Path(selection).read_text())
    if data.get("delta") is None:
        raise ValueError(f"{selection} holds no delta: no held-out caption to calibrate it on; set tag_selection.delta")
    return float(data["delta"])


def true_tags(prompt: EvalPrompt) -> set[str]:
    """The prompt file's vocabulary tags (genre, sub-genre, gender, mood, instruments)."""
    values = {prompt.genre, prompt.subgenre, prompt.gender, prompt.mood, *prompt.instruments}
    return {v for v in values if v}


def tag_vocabulary() -> dict[str, list[str]]:
    """The families the LM's tag condition is made of (prompt files use the same ones)."""
    return {family: list(names) for family, names in load_vocabulary().items() if family in VOCABULARY_FAMILY.values()}


def tags_by_family(tags: Sequence[str], vocabulary: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """{family: [tag, ...]} in selection order (most similar first), families as the LM's tag text orders them."""
    family_of = {tag: family for family, names in vocabulary.items() for tag in names}
    out: dict[str, list[str]] = {}
    for tag in tags:
        out.setdefault(family_of[tag], []).append(tag)
    return out


def tag_vectors(clap_model, vocabulary: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """{tag: CLAP text embedding} of every vocabulary tag (Eq. 5's candidates)."""
    names = [tag for family in vocabulary.values() for tag in family]
    return dict(zip(names, clap_model.embed_text(names), strict=True))


def eq5_tags(
    prompt_vector: np.ndarray, tag_embeddings: Mapping[str, np.ndarray], delta: float, max_tags: int = 0
) -> tuple[list[str], list[str]]:
    """(Eq. 5's selection, most similar first; the `max_tags` of it the LM gets, 0: all)."""
    chosen = select_tags(prompt_vector, tag_embeddings, delta)
    return chosen, chosen[:max_tags] if max_tags else chosen


def condition_rows(
    prompts: Sequence[EvalPrompt],
    prompt_embeddings: np.ndarray,
    tag_embeddings: Mapping[str, np.ndarray],
    delta: float,
    vocabulary: Mapping[str, Sequence[str]],
    max_tags: int = 0,
) -> pd.DataFrame:
    """One row per prompt: the Eq. 5 tags (the `max_tags` most similar, 0: all) as the LM's tag text, the
    lyrics, and the Eq. 5 selection scored against the prompt's own tags."""
    from musicot.lm.text import tags_text

    rows = []
    for prompt, vector in zip(prompts, prompt_embeddings, strict=True):
        chosen, used = eq5_tags(vector, tag_embeddings, delta, max_tags)
        truth, got = true_tags(prompt), set(chosen)
        rows.append(
            dict(
                prompt_id=prompt.id,
                prompt=prompt.prompt,
                lyrics=prompt.lyrics,
                tags_text=tags_text(tags_by_family(used, vocabulary)),
                lyrics_text=prompt.lyrics,  # its [VERSE]-style lines are the LM's section tokens already
                n_tags=len(chosen),
                n_tags_used=len(used),
                tag_precision=len(got & truth) / len(got) if got else float("nan"),
                tag_recall=len(got & truth) / len(truth) if truth else float("nan"),
            )
        )
    return pd.DataFrame(rows)


def quality_rows(table: pd.DataFrame, delta: float) -> list[dict]:
    note = f"delta {delta:g}; prompt = evaluation prompt text; truth = its tags"
    return [
        dict(
            step=STEP,
            metric=f"eq5_{name}",
            value=float(table[column].mean()),
            n=int(table[column].notna().sum()),
            note=note,
        )
        for name, column in (
            ("tags_selected", "n_tags"),
            ("tags_given_to_lm", "n_tags_used"),
            ("precision", "tag_precision"),
            ("recall", "tag_recall"),
        )
    ]


def build(
    prompts_path: Path, clap_dir: Path, selection: Path, max_prompts: int = 0, max_tags: int = 0
) -> tuple[pd.DataFrame, np.ndarray, float]:
    """(conditions table, CLAP text embeddings, delta) for the prompt file's first `max_prompts` (0: all)."""
    from musicot.clap.model import load

    prompts = load_prompts(prompts_path)
    prompts = prompts[:max_prompts] if max_prompts else prompts
    delta = read_delta(selection)
    vocabulary = tag_vocabulary()
    model = load(clap_dir)
    embeddings = model.embed_text([p.prompt for p in prompts])
    rows = condition_rows(prompts, embeddings, tag_vectors(model, vocabulary), delta, vocabulary, max_tags)
    return rows, embeddings, delta


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="config YAML path or inline JSON (reads generate.max_prompts)")
    parser.add_argument("--prompts", type=Path, required=True, help="JSON-lines prompt file")
    parser.add_argument("--clap", type=Path, required=True, help="CLAP model folder (results/clap/model)")
    parser.add_argument("--selection", type=Path, required=True, help="results/clap/tag_selection.json (delta)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    gen = config["generate"]
    table, embeddings, delta = build(args.prompts, args.clap, args.selection, gen["max_prompts"], gen["max_tags"])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out / CONDITIONS_FILE, index=False)
    np.save(args.out / CLAP_FILE, embeddings.astype(np.float32))
    quality = quality_rows(table, delta)
    write_quality(quality, args.out / QUALITY_FILE)
    log.info("%d prompts: %s", len(table), {r["metric"]: round(r["value"], 3) for r in quality})


if __name__ == "__main__":
    main()
