"""MOS from the listening kit's ratings files: each file checked against the kit's key, then mean and CI.

    python -m musicot.listen.ratings --key results/listening/mos_key.json --ratings ratings/mos/*.json \
        --out results/metrics/mos.csv

A rater opens the kit (`musicot.listen.kit`), rates every song 1-5 on each dimension and downloads one
JSON file. The page never shows which system made a song: the key that maps its opaque sample ids to
systems lies outside the kit folder. Here each file is read against that key; a file that is not a
ratings file, belongs to another kit (the songs were regenerated since), rates a song twice, gives a
value outside 1-5 or leaves songs unrated is rejected as a whole, with the file and the problem in the
log and in `mos_rejected.tsv`, so a MOS never rests on part of a rater's work.

MOS per system and dimension is the mean of its ratings, with a Student-t interval over the ratings
(ITU-T P.800.2's MOS CI, which treats votes as independent); `overall` is the same over each rating's
mean of the dimensions, and is what Table 1 shows. With no files the table has no rows and Table 1
says `n/a (no ratings)`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger("musicot.listen")

FORMAT, VERSION = "musicot-mos-ratings", 1
OVERALL = "overall"
SCALE = (1, 5)
MOS_COLUMNS = ["system", "dimension", "mos", "ci_low", "ci_high", "n_ratings", "n_raters", "n_files"]
KEY_FORMAT = "musicot-mos-key"
SAMPLE_COLUMNS = ["sample", "system", "prompt_id", "audio_sha1"]
REJECTED_COLUMNS = ["file", "problem"]


class RatingsError(ValueError):
    """A ratings file that cannot be used; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class Key:
    """The kit's key: which system and prompt each opaque sample id stands for."""

    kit: str
    dimensions: tuple[str, ...]
    samples: pd.DataFrame  # SAMPLE_COLUMNS, one row per sample

    @classmethod
    def load(cls, path: Path) -> Key:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
            raise ValueError(f"{path}: not a MOS kit key; rebuild it with musicot.listen.kit")
        samples = pd.DataFrame(data["samples"], columns=SAMPLE_COLUMNS).astype(str)
        return cls(str(data["kit"]), tuple(data["dimensions"]), samples)


def _rating_value(value: object, where: str, dimension: str) -> int:
    # bool is an int in Python; a JSON true is not a rating
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RatingsError(f"{where}: {dimension} is {value!r}, not a whole number {SCALE[0]}-{SCALE[1]}")
    if not SCALE[0] <= value <= SCALE[1]:
        raise RatingsError(f"{where}: {dimension} is {value!r}, outside {SCALE[0]}-{SCALE[1]}")
    return int(value)


def read_ratings(path: Path, key: Key) -> pd.DataFrame:
    """One rater's file as rows (file, rater, sample, system, prompt_id, <dimension>...), or RatingsError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RatingsError(f"{path}: not a text file") from None
    except json.JSONDecodeError as error:
        raise RatingsError(f"{path}: not JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RatingsError(f'{path}: not a musicot MOS ratings file (it has no "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise RatingsError(f"{path}: ratings format version {data.get('version')!r}; this musicot reads {VERSION}")
    if data.get("kit") != key.kit:
        raise RatingsError(
            f"{path}: rates kit {data.get('kit')!r}, but this run's kit is {key.kit!r} "
            "(its songs were generated again since the file was made): rate the current kit"
        )
    rater = str(data.get("rater") or "").strip()
    if not rater:
        raise RatingsError(f"{path}: no rater name")
    ratings = data.get("ratings")
    if not isinstance(ratings, list):
        raise RatingsError(f'{path}: "ratings" is not a list')
    known = key.samples.set_index("sample")
    rows, seen = [], set()
    for i, entry in enumerate(ratings):
        where = f"{path}: rating {i + 1}"
        if not isinstance(entry, dict) or "sample" not in entry:
            raise RatingsError(f'{where} is not an object with a "sample"')
        sample = str(entry["sample"])
        if sample not in known.index:
            raise RatingsError(f"{where} rates sample {sample!r}, which is not in kit {key.kit}")
        if sample in seen:
            raise RatingsError(f"{where} rates sample {sample!r} a second time")
        seen.add(sample)
        missing = [d for d in key.dimensions if d not in entry]
        if missing:
            raise RatingsError(f"{where} (sample {sample}) has no {', '.join(missing)}")
        values = {d: _rating_value(entry[d], f"{where} (sample {sample})", d) for d in key.dimensions}
        rows.append(dict(sample=sample, **values))
    unrated = [s for s in known.index if s not in seen]
    if unrated:
        raise RatingsError(
            f"{path}: partial, rates {len(seen)} of {len(known)} songs ({len(unrated)} unrated, first {unrated[0]}); "
            "the page downloads a file only once every song is rated"
        )
    table = pd.DataFrame(rows)
    table = table.merge(key.samples[["sample", "system", "prompt_id"]], on="sample", how="left")
    table.insert(0, "rater", rater)
    table.insert(0, "file", str(path))
    return table


def t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean; NaN bounds for fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return mean, mean - float(half), mean + float(half)


def aggregate(ratings: pd.DataFrame, dimensions: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """MOS_COLUMNS per (system, dimension), `overall` from each rating's mean over the dimensions."""
    if ratings.empty:
        return pd.DataFrame(columns=MOS_COLUMNS)
    ratings = ratings.assign(**{OVERALL: ratings[list(dimensions)].mean(axis=1)})
    rows = []
    for system, group in ratings.groupby("system", sort=True):
        for dimension in (*dimensions, OVERALL):
            mean, low, high = t_interval(group[dimension].to_numpy(), confidence)
            rows.append(
                dict(
                    system=system,
                    dimension=dimension,
                    mos=mean,
                    ci_low=low,
                    ci_high=high,
                    n_ratings=len(group),
                    n_raters=group["rater"].nunique(),
                    n_files=group["file"].nunique(),
                )
            )
    return pd.DataFrame(rows, columns=MOS_COLUMNS)


def collect(paths: Sequence[Path], key: Key) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(every accepted file's ratings, REJECTED_COLUMNS of the rest); the same file twice counts once."""
    frames, rejected, digests = [], [], {}
    for path in sorted(Path(p) for p in paths):
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest in digests:
            rejected.append(dict(file=str(path), problem=f"the same ratings as {digests[digest]}"))
            continue
        try:
            frames.append(read_ratings(path, key))
            digests[digest] = str(path)
        except RatingsError as error:
            log.warning("rejected %s", error)
            rejected.append(dict(file=str(path), problem=str(error).removeprefix(f"{path}: ")))
    ratings = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["file", "rater", "sample"])
    return ratings, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--key", type=Path, required=True, help="results/listening/mos_key.json")
    parser.add_argument("--ratings", type=Path, nargs="*", default=[], help="ratings files the kit's page downloaded")
    parser.add_argument("--confidence", type=float, default=0.95, help="CI coverage")
    parser.add_argument("--out", type=Path, required=True, help="mos.csv (mos_ratings.csv, mos_rejected.tsv beside)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    key = Key.load(args.key)
    ratings, rejected = collect(args.ratings, key)
    table = aggregate(ratings, key.dimensions, args.confidence)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    ratings.to_csv(args.out.with_name("mos_ratings.csv"), index=False)
    rejected.to_csv(args.out.with_name("mos_rejected.tsv"), sep="\t", index=False)
    log.info(
        "%d ratings files: %d accepted, %d rejected; MOS of %d systems",
        len(args.ratings),
        len(args.ratings) - len(rejected),
        len(rejected),
        table["system"].nunique(),
    )


if __name__ == "__main__":
    main()
