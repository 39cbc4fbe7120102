"""Which of the paper's orderings hold here: FAD differences between systems with paired bootstrap CIs.

The paper's claims are orderings: full MusiCoT has a lower FAD than the base model and than each
ablation. Two FADs with overlapping CIs say little about their difference, but every system answered
the same prompts, so the difference itself can be bootstrapped: resample prompts, recompute both
systems' FAD on the same resample, take the difference. For every system other than the anchor
(`evaluate.analyze_system`; `musicot.metrics.evaluate` runs this): delta = FAD(system) - FAD(anchor),
its percentile CI, the paper's delta, and a verdict: `holds` (the CI excludes 0 on the paper's side),
`reversed` (it excludes 0 on the other side), or `CI includes 0` with the sign our estimate has.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.metrics.evaluate import REFERENCE, load_embeddings
from musicot.metrics.fad import Gaussian, frechet_distance

COLUMNS = [
    "metric",
    "system",
    "versus",
    "paper_delta",
    "delta",
    "ci_low",
    "ci_high",
    "confidence",
    "n_songs",
    "verdict",
]


def verdict(paper_delta: float | None, delta: float, low: float, high: float) -> str:
    """How our difference and its CI read against the sign of the paper's difference."""
    if paper_delta is None or not np.isfinite(paper_delta) or paper_delta == 0:
        return "no ordering in the paper"
    sign = np.sign(paper_delta)
    if sign * low > 0 and sign * high > 0:
        return "holds"
    if sign * low < 0 and sign * high < 0:
        return "reversed"
    return "CI includes 0 (paper's sign)" if sign * delta > 0 else "CI includes 0 (other sign)"


def paired_fad_delta(
    a: np.ndarray,
    a_songs: np.ndarray,
    b: np.ndarray,
    b_songs: np.ndarray,
    reference: np.ndarray,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> tuple[float, float, float, int]:
    """(FAD(a) - FAD(b), CI low, CI high, shared songs): songs resampled together in both systems."""
    ref = Gaussian.fit(reference)
    shared = np.intersect1d(np.unique(a_songs), np.unique(b_songs))
    rows_a = {s: np.flatnonzero(a_songs == s) for s in shared}
    rows_b = {s: np.flatnonzero(b_songs == s) for s in shared}

    def delta(pick: np.ndarray) -> float:
        ia = np.concatenate([rows_a[s] for s in shared[pick]])
        ib = np.concatenate([rows_b[s] for s in shared[pick]])
        return frechet_distance(Gaussian.fit(a[ia]), ref) - frechet_distance(Gaussian.fit(b[ib]), ref)

    value = delta(np.arange(len(shared)))
    values = [delta(rng.integers(0, len(shared), len(shared))) for _ in range(resamples)]
    tail = (1 - confidence) / 2
    return value, float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)), len(shared)


def compare(
    systems: Mapping[str, Path],
    reference_dir: Path,
    paper: Mapping,
    anchor: str,
    resamples: int,
    confidence: float,
    seed: int,
) -> pd.DataFrame:
    if anchor not in systems:
        raise ValueError(f"no system {anchor!r} to compare with; have {sorted(systems)}")
    ref_table, ref_emb = load_embeddings(reference_dir)
    reference = ref_emb[(ref_table["set"] == REFERENCE).to_numpy()]
    paper_fad = {row["system"]: row.get("FAD") for row in paper.get("own", [])}
    loaded = {name: load_embeddings(folder) for name, folder in systems.items()}
    b_table, b_emb = loaded[anchor]
    rng = np.random.default_rng([seed, 47])
    rows = []
    for name, (table, emb) in loaded.items():
        if name == anchor:
            continue
        value, low, high, n = paired_fad_delta(
            emb, table["song"].to_numpy(), b_emb, b_table["song"].to_numpy(), reference, resamples, confidence, rng
        )
        ours_p, theirs_p = paper_fad.get(name), paper_fad.get(anchor)
        paper_delta = None if ours_p is None or theirs_p is None else round(ours_p - theirs_p, 6)
        rows.append(
            dict(
                metric="FAD",
                system=name,
                versus=anchor,
                paper_delta=paper_delta,
                delta=value,
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                n_songs=n,
                verdict=verdict(paper_delta, value, low, high),
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
