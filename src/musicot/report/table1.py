"""The paper's Table 1 and the generated songs' tables, from results/metrics: ours beside the paper's.

* `table1`: one row per system of this run (RTF, MOS, FAD with its CI and FAD∞, CE/CU/PC/PQ), the
  real-audio FAD floor, then the paper's rows (`workflow/resources/paper_table1.yaml`): its own systems
  (`paper`) and the commercial/open ones it quotes (`paper (quoted, not rerun)`).
* `table1_orderings`: the paper's orderings (MusiCoT vs base and vs each ablation) with our paired CIs.
* `analyzability`: per anchor, the generated songs' r (separated stems) vs held-out corpus songs (truth
  stems) vs the paper's, each with the songs and windows it rests on.
* `copying`: referencing vs continuation, longest shared run and n-gram overlap with CIs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

NO_RATINGS = "n/a (no ratings)"
AXES = ("CE", "CU", "PC", "PQ")
TABLE1_COLUMNS = ["system", "source", "RTF", "MOS", "FAD", "FAD CI", "FAD∞", *AXES, "note"]
THIS_RUN, PAPER, QUOTED, FLOOR = "this run", "paper", "paper (quoted, not rerun)", "this run (real audio)"


def _ci(low, high, digits: int = 3) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _mos(system: str, mos: pd.DataFrame | None) -> object:
    """'3.52 [3.31, 3.73]' (the overall MOS from musicot.listen.ratings), or NO_RATINGS."""
    if mos is None or mos.empty:
        return NO_RATINGS
    rows = (
        mos[(mos["system"] == system) & (mos["dimension"] == "overall")]
        if "dimension" in mos
        else mos[mos["system"] == system]
    )
    if rows.empty:
        return NO_RATINGS
    row = rows.iloc[0]
    return f"{row['mos']:.2f} {_ci(row['ci_low'], row['ci_high'], 2)}".strip()


def mos_table(mos: pd.DataFrame | None, paper: Mapping) -> pd.DataFrame:
    """MOS per system and dimension with its CI and how many ratings and raters it rests on, beside the
    paper's single MOS; one row saying NO_RATINGS when no ratings file was accepted."""
    paper_mos = {e["system"]: e.get("MOS") for e in paper.get("own", []) if "system" in e}
    if mos is None or mos.empty:
        return pd.DataFrame([{"system": "all", "dimension": "", "MOS": NO_RATINGS, "paper MOS": ""}])
    rows = []
    for r in mos.itertuples():
        rows.append(
            {
                "system": r.system,
                "dimension": r.dimension,
                "MOS": round(float(r.mos), 3),
                "95% CI": _ci(None if pd.isna(r.ci_low) else r.ci_low, None if pd.isna(r.ci_high) else r.ci_high, 2),
                "ratings": int(r.n_ratings),
                "raters": int(r.n_raters),
                "paper MOS": paper_mos.get(r.system, "") if r.dimension == "overall" else "",
            }
        )
    return pd.DataFrame(rows)


def system_row(metrics: Mapping, mos: pd.DataFrame | None = None) -> dict:
    """One system of this run."""
    fad, aes, rtf = metrics["fad"], metrics["aesthetics"], metrics["rtf"]
    scored = aes.get("status") == "scored"
    note = f"{metrics['n_songs']} songs x {metrics['duration_s']:g} s; RTF on {rtf['hardware']}"
    return {
        "system": metrics["system"],
        "source": THIS_RUN,
        "RTF": rtf["total"],
        "MOS": _mos(metrics["system"], mos),
        "FAD": fad["value"],
        "FAD CI": _ci(fad["ci_low"], fad["ci_high"]),
        "FAD∞": fad["fad_inf"],
        **{axis: (aes[axis] if scored else aes.get("status", "n/a")) for axis in AXES},
        "note": note,
    }


def floor_row(metrics: Mapping) -> dict | None:
    floor = metrics.get("fad_floor")
    if not floor:
        return None
    return {
        "system": f"real songs ({floor['songs']})",
        "source": FLOOR,
        "FAD": floor["value"],
        "FAD CI": _ci(floor["ci_low"], floor["ci_high"]),
        "FAD∞": floor["fad_inf"],
        "note": f"real audio against the same reference ({floor['n_songs']} songs, {floor['n_windows']} windows): "
        "the FAD two sets of real songs reach at this size",
    }


def paper_rows(paper: Mapping) -> list[dict]:
    rows = []
    for entry, source in [(e, PAPER) for e in paper.get("own", [])] + [(e, QUOTED) for e in paper.get("external", [])]:
        values = {k: entry.get(k) for k in ("RTF", "MOS", "FAD", *AXES)}
        note = f"pairs with our {entry['system']}" if "system" in entry else ""
        if source == QUOTED and all(v is None for v in values.values()):
            note = "numbers not transcribed: see the paper's Table 1 (workflow/resources/paper_table1.yaml)"
        rows.append({"system": entry["row"], "source": source, **values, "note": note})
    return rows


def table1(metrics: Sequence[Mapping], paper: Mapping, mos: pd.DataFrame | None = None) -> pd.DataFrame:
    rows = [system_row(m, mos) for m in metrics]
    floor = floor_row(metrics[0]) if metrics else None
    rows += [floor] if floor else []
    rows += paper_rows(paper)
    table = pd.DataFrame(rows, columns=TABLE1_COLUMNS)
    for column in ("RTF", "FAD", "FAD∞"):
        table[column] = pd.to_numeric(table[column]).round(4)
    return table


def orderings_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Each ordering the paper reports, its delta and ours with the paired CI."""
    out = comparisons.copy()
    out["claim"] = [
        f"{r.versus} better than {r.system} on {r.metric} (lower)"
        if (r.paper_delta or 0) > 0
        else f"{r.system} vs {r.versus}"
        for r in out.itertuples()
    ]
    out["ours"] = [f"{r.delta:+.4f} {_ci(r.ci_low, r.ci_high, 4)}" for r in out.itertuples()]
    out["paper"] = out["paper_delta"].map(lambda v: "" if pd.isna(v) else f"{v:+.3f}")
    return out[["claim", "metric", "paper", "ours", "n_songs", "verdict"]]


def analyzability_table(
    generated: pd.DataFrame, heldout: pd.DataFrame | None, paper_r: Mapping[str, float], min_songs: int
) -> pd.DataFrame:
    """Per anchor: generated-song r (pooled, per-song mean) vs held-out truth r vs the paper's."""
    truth = None
    if heldout is not None:
        truth = heldout[(heldout["stems"] == "truth") & (heldout["embedding"] == "quantized")].set_index("anchor")
    rows = []
    for r in generated.itertuples():
        few = r.n_songs < min_songs
        row = {
            "anchor": r.anchor,
            "generated r": r.r_pooled,
            "generated r per song": r.r_per_song_mean,
            "generated songs / windows": f"{r.n_songs} / {r.n_windows}"
            + (f" (fewer than {min_songs} songs)" if few else ""),
            "held-out truth r": np.nan,
            "held-out songs / windows": "",
            "paper r": paper_r.get(r.anchor, np.nan),
        }
        if truth is not None and r.anchor in truth.index:
            t = truth.loc[r.anchor]
            row["held-out truth r"] = t["r_pooled"]
            row["held-out songs / windows"] = f"{int(t['n_songs'])} / {int(t['n_windows'])}"
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in ("generated r", "generated r per song", "held-out truth r", "paper r"):
        table[column] = pd.to_numeric(table[column]).round(3)
    return table


def copying_table(summary: pd.DataFrame) -> pd.DataFrame:
    out = summary.copy()
    out["value"] = [f"{r.mean:.3f} {_ci(r.ci_low, r.ci_high)}" for r in out.itertuples()]
    return out[["mode", "metric", "value", "n_songs", "note"]]
