"""Analyzability of the musical thought on held-out corpus songs (the paper's section 5.3).

    python -m musicot.analysis.thought --config CFG --tracks results/corpus/tracks.parquet \
        --embeddings results/clap/embeddings --rvq results/rvq --stems results/prep/stems \
        --out results/analysis/thought_analyzability.csv --windows-out results/analysis/thought_windows.parquet

For every window of the analysed splits (`analysis.splits`, default the held-out valid and
reference songs) the window's thought tokens (results/rvq/codes.parquet) are decoded back into
CLAP space (`musicot.rvq.model.decode`), compared by cosine with each anchor's CLAP text
embedding (rows kind == "anchor" of text.parquet/text.npy) and correlated with that stem's
volume by `analyzability`. Three row sets, told apart by the columns `embedding` and `stems`:

* quantized / truth: the thought against the corpus' own stem volume (exact ground truth);
* quantized / separated: against the stems our separator extracted (results/prep/stems), as
  the paper measures it with Demucs;
* raw / truth: the un-quantized CLAP embeddings against the truth, a diagnostic that separates
  what CLAP knows from what the RVQ keeps of it.

Each row carries the paper's r for its anchor (`paper_r`, from `PAPER_R`). The paper measures
generated songs over 30 s segments; here the unit is the CLAP window (10 s by default) of real
held-out songs, since the generator comes later in the DAG.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.analysis.analyzability import (
    ANCHORS,
    RESULT_COLUMNS,
    analyzability,
    anchor_similarity,
    window_volume_from_audio,
    window_volume_from_truth,
)
from musicot.config import build, load_config

log = logging.getLogger("musicot.analysis")

# The paper's reported Pearson r per anchor (Lam et al. 2025, "Analyzable Chain-of-Musical-Thought
# Prompting for High-Fidelity Music Generation", arXiv 2503.19611, section 5.3): similarity of the
# de-quantized thought with the anchor text vs. the volume of that htdemucs_6s stem, on generated
# songs. These are the paper's numbers, never ours.
PAPER_R: dict[str, float] = {"vocals": 0.689, "bass": 0.584, "drums": 0.639, "guitar": 0.628, "piano": 0.531}

OUTPUT_COLUMNS = ["anchor", "stems", "embedding", *RESULT_COLUMNS[2:], "paper_r"]
VOLUME_COLUMNS = ["song_id", "window", "stem", "rms"]
WINDOW_KEYS = ["song_id", "window", "start", "end", "split"]


@dataclass(frozen=True)
class AnalysisConfig:
    """The `analysis` section of the config schema (defaults live there)."""

    splits: tuple[str, ...] = ("valid", "reference")
    anchors: tuple[str, ...] = ANCHORS
    min_mean_volume: float = 0.01
    timeline_song: str = ""
    # the shifted corpus' settings, as validated (musicot.data.shifted reads them)
    shifted: Mapping = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping) -> AnalysisConfig:
        """From a validated top-level config."""
        return build(cls, config["analysis"])


# ---------------------------------------------------------------- inputs


def load_window_embeddings(folder: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """windows.parquet and windows.npy of a CLAP embedding folder, checked to agree (the RVQ's reader)."""
    from musicot.rvq.train import load_windows  # torch only where the thought is analysed

    emb, table = load_windows(Path(folder) / "windows.npy", Path(folder) / "windows.parquet", WINDOW_KEYS)
    return table, emb


def anchor_embeddings(folder: Path, anchors: Sequence[str]) -> np.ndarray:
    """(A, d) text embeddings of `anchors`, from the rows kind == "anchor" of text.parquet/text.npy."""
    texts = pd.read_parquet(Path(folder) / "text.parquet")
    emb = np.load(Path(folder) / "text.npy").astype(np.float32, copy=False)
    if len(emb) != len(texts):
        raise ValueError(f"{folder}/text.npy has {len(emb)} rows but text.parquet has {len(texts)}")
    rows = {str(t): i for i, (t, k) in enumerate(zip(texts["text"], texts["kind"], strict=True)) if k == "anchor"}
    missing = [a for a in anchors if a not in rows]
    if missing:
        raise ValueError(f"{folder}/text.parquet has no anchor row for {missing} (anchors there: {sorted(rows)})")
    return emb[[rows[a] for a in anchors]]


def window_codes(codes: pd.DataFrame, windows: pd.DataFrame) -> np.ndarray:
    """(N, L) codes of `windows` (in their row order) from the long codes table (song_id, window, level, code)."""
    wide = codes.pivot_table(index=["song_id", "window"], columns="level", values="code", aggfunc="first")
    keys = pd.MultiIndex.from_frame(windows[["song_id", "window"]].astype({"window": "int64"}))
    aligned = wide.reindex(keys)
    if aligned.isna().any().any():
        lost = windows[aligned.isna().any(axis=1).to_numpy()][["song_id", "window"]].head(3).to_dict("records")
        raise ValueError(f"codes.parquet lacks windows such as {lost}: was the RVQ run on these embeddings?")
    return aligned.to_numpy(dtype=np.int64, copy=True)  # writable: torch refuses read-only arrays


def dequantize(rvq_dir: Path, codes: np.ndarray) -> np.ndarray:
    """(N, L) thought codes -> (N, d) embeddings: the sum of their codewords (all levels)."""
    from musicot.rvq.model import decode, load_rvq, read_rvq_config  # torch only where codes are decoded

    cfg, dim = read_rvq_config(rvq_dir)
    if codes.shape[1] != cfg.levels:
        raise ValueError(f"codes have {codes.shape[1]} levels but the RVQ in {rvq_dir} has {cfg.levels}")
    if not len(codes):
        return np.zeros((0, dim), np.float32)
    return decode(load_rvq(rvq_dir), codes)


def thought_frames(
    codes: np.ndarray, rvq_dir: Path, anchor_text: np.ndarray, anchors: Sequence[str], window_s: float
) -> pd.DataFrame:
    """A drawn thought frame by frame: frame, start, end, code_<level>, and sim_<anchor>, the cosine of
    the de-quantized frame with each anchor's text embedding (`anchor_text`: (A, d), `anchors` order)."""
    sims = anchor_similarity(dequantize(rvq_dir, codes), anchor_text)
    table = pd.DataFrame({"frame": np.arange(len(codes))})
    table["start"], table["end"] = table["frame"] * window_s, (table["frame"] + 1) * window_s
    for level in range(codes.shape[1]):
        table[f"code_{level}"] = codes[:, level]
    for a, anchor in enumerate(anchors):
        table[f"sim_{anchor}"] = sims[:, a]
    return table


def _volume(rows: pd.DataFrame) -> pd.DataFrame:
    """A volume table with its columns even when empty (a song without truth or stems)."""
    return rows.reindex(columns=VOLUME_COLUMNS) if len(rows) else pd.DataFrame(columns=VOLUME_COLUMNS)


def truth_volume(tracks_path: Path, windows: pd.DataFrame) -> pd.DataFrame | None:
    """Per-window RMS of each stem from the corpus truth; None when the corpus has no true stems at all."""
    from musicot.prep.common import load_truth

    try:
        volume = load_truth(tracks_path, "stem_volume")
    except FileNotFoundError:
        volume = pd.DataFrame()
    if not len(volume):
        log.warning("the corpus has no true stem volume: no truth rows")
        return None
    volume = volume[volume["song_id"].isin(windows["song_id"])]
    return _volume(window_volume_from_truth(volume, windows))


# ---------------------------------------------------------------- analysis


def analyzability_rows(
    windows: pd.DataFrame,
    quantized: np.ndarray,
    raw: np.ndarray,
    anchors: np.ndarray,
    truth: pd.DataFrame | None,
    separated: pd.DataFrame | None,
    cfg: AnalysisConfig,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The row sets (OUTPUT_COLUMNS) whose volumes exist (None: no true stems / no separator) and the
    similarities {"quantized", "raw"} (N, A) behind them."""
    sims = {"quantized": anchor_similarity(quantized, anchors), "raw": anchor_similarity(raw, anchors)}
    parts = []
    row_sets = (("quantized", "truth", truth), ("quantized", "separated", separated), ("raw", "truth", truth))
    for embedding, stems, volume in row_sets:
        if volume is None:
            continue
        rows = analyzability(windows, sims[embedding], volume, cfg.anchors, cfg.min_mean_volume, label=stems)
        parts.append(rows.assign(embedding=embedding))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=OUTPUT_COLUMNS)
    out["paper_r"] = out["anchor"].map(PAPER_R)
    return out[OUTPUT_COLUMNS], sims


def windows_table(
    windows: pd.DataFrame,
    codes: np.ndarray,
    sims: Mapping[str, np.ndarray],
    truth: pd.DataFrame | None,
    separated: pd.DataFrame | None,
    anchors: Sequence[str],
) -> pd.DataFrame:
    """One row per window: WINDOW_KEYS, code_<level> (0-based), sim_<anchor> (thought), sim_raw_<anchor>,
    volume_truth_<anchor> and volume_separated_<anchor> (NaN where a volume is missing)."""
    out = windows[WINDOW_KEYS].reset_index(drop=True).copy()
    for level in range(codes.shape[1]):
        out[f"code_{level}"] = codes[:, level]
    for a, anchor in enumerate(anchors):
        out[f"sim_{anchor}"] = sims["quantized"][:, a]
        out[f"sim_raw_{anchor}"] = sims["raw"][:, a]
    keys = pd.MultiIndex.from_arrays([out["song_id"].astype(str), out["window"].astype(np.int64)])
    for name, volume in (("truth", truth), ("separated", separated)):
        volume = _volume(pd.DataFrame()) if volume is None else volume
        for anchor in anchors:
            rows = volume[volume["stem"] == anchor]
            index = pd.MultiIndex.from_arrays([rows["song_id"].astype(str), rows["window"].astype(np.int64)])
            rms = pd.Series(rows["rms"].to_numpy(dtype=np.float64), index=index)
            out[f"volume_{name}_{anchor}"] = rms.reindex(keys).to_numpy()
    return out


def run(
    cfg: AnalysisConfig, tracks_path: Path, embeddings_dir: Path, rvq_dir: Path, stems_dir: Path | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(analyzability rows, per-window table) of the windows in `cfg.splits`; no separated rows without `stems_dir`."""
    windows, emb = load_window_embeddings(embeddings_dir)
    keep = windows["split"].isin(list(cfg.splits)).to_numpy()
    windows, raw = windows[keep].reset_index(drop=True), emb[keep]
    if not len(windows):
        log.warning("no windows in splits %s: every r is NaN", list(cfg.splits))
    codes = window_codes(pd.read_parquet(Path(rvq_dir) / "codes.parquet"), windows)
    quantized = dequantize(rvq_dir, codes)
    anchors = anchor_embeddings(embeddings_dir, cfg.anchors)
    truth = truth_volume(tracks_path, windows)
    separated = None if stems_dir is None else _volume(window_volume_from_audio(stems_dir, windows, cfg.anchors))
    rows, sims = analyzability_rows(windows, quantized, raw, anchors, truth, separated, cfg)
    return rows, windows_table(windows, codes, sims, truth, separated, cfg.anchors)


def write_results(rows: pd.DataFrame, per_window: pd.DataFrame, out: Path, windows_out: Path) -> None:
    """An analysis' r table (CSV) and per-window table (parquet), and the r rows on stdout for the log."""
    for path in (out, windows_out):
        path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out, index=False)
    per_window.to_parquet(windows_out, index=False)
    print(json.dumps(rows.round(3).to_dict("records"), indent=1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
    parser.add_argument("--embeddings", type=Path, required=True, help="CLAP embedding folder (windows.*, text.*)")
    parser.add_argument("--rvq", type=Path, required=True, help="RVQ folder (model.safetensors, codes.parquet)")
    parser.add_argument("--stems", type=Path, help="separated stems, <song_id>/<stem>.flac (none: no separated rows)")
    parser.add_argument("--out", type=Path, required=True, help="analyzability CSV to write")
    parser.add_argument("--windows-out", type=Path, required=True, help="per-window parquet to write")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = AnalysisConfig.from_config(load_config(args.config))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows, per_window = run(cfg, args.tracks, args.embeddings, args.rvq, args.stems)
    write_results(rows, per_window, args.out, args.windows_out)


if __name__ == "__main__":
    main()
