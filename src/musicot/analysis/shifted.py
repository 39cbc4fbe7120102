"""Analyzability of the musical thought on the shifted corpus: songs made differently from CLAP's.

    python -m musicot.analysis.shifted --config CFG --tracks results/shifted/tracks.parquet \
        --clap results/clap/model --embeddings results/clap/embeddings --rvq results/rvq \
        --out results/analysis/thought_shifted.csv --windows-out results/analysis/thought_shifted_windows.parquet

The shifted songs (musicot.data.shifted) are cut into the windows the held-out corpus songs are
analysed in (`clap.window_s` at `clap.hop_s`), embedded by the trained CLAP, quantized and
de-quantized by the RVQ (the thought an LM would see for them) and compared with the anchor texts
(the same anchor embeddings as musicot.analysis.thought); r per anchor, pooled over all windows and
per song, against each stem's true volume. Rows are those of thought_analyzability.csv (quantized and
raw CLAP, truth stems) with `corpus` = shifted, so the two tables stack.

--by-property-out: the thought's pooled r per anchor within the songs that drew each value of each
shifted property (drum kit, GM program per stem, mode, tempo band, absent stem; songs.parquet beside
the tracks): which change the thought does not read through.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.analysis.analyzability import window_volume_from_truth
from musicot.analysis.thought import (
    OUTPUT_COLUMNS,
    AnalysisConfig,
    analyzability_rows,
    anchor_embeddings,
    windows_table,
    write_results,
)
from musicot.config import load_config
from musicot.metrics.correlation import pearson

log = logging.getLogger("musicot.analysis")

SHIFTED_COLUMNS = ["corpus", *OUTPUT_COLUMNS]
PROPERTY_COLUMNS = ["property", "value", "anchor", "r_pooled", "n_windows", "n_songs"]
PROPERTIES = ("drum_kit", "program_bass", "program_piano", "program_guitar", "program_other", "mode", "tempo", "absent")


def by_property(
    per_window: pd.DataFrame, songs: pd.DataFrame, anchors: Sequence[str], tempo_ranges: Sequence[Sequence[int]]
) -> pd.DataFrame:
    """Pooled r of the thought (sim_<anchor> vs volume_truth_<anchor>) per anchor within each value of each
    property the shifted songs were drawn with; tempo by the range of `tempo_ranges` (analysis.shifted.tempo)
    it was drawn from, absent "" as none. NaN where a group's windows are fewer than 3 or hold a constant volume."""
    songs = songs.set_index("song_id")
    values = pd.DataFrame(index=songs.index)
    for name in PROPERTIES:
        if name == "tempo":
            bands = {f"{a}-{b} BPM": (a, b) for a, b in tempo_ranges}
            values[name] = [
                next((k for k, (a, b) in bands.items() if a <= t <= b), "other") for t in songs["tempo_bpm"]
            ]
        elif name == "absent":
            values[name] = songs["absent"].fillna("").replace("", "none")
        else:
            values[name] = songs[name].astype(str)
    rows = []
    for name in PROPERTIES:
        groups = per_window["song_id"].map(values[name])
        for value in sorted(groups.dropna().unique()):
            part = per_window[groups == value]
            for anchor in anchors:
                x = part[f"sim_{anchor}"].to_numpy(dtype=np.float64)
                y = part[f"volume_truth_{anchor}"].to_numpy(dtype=np.float64)
                known = np.isfinite(x) & np.isfinite(y)
                x, y = x[known], y[known]
                r = pearson(x, y)
                n_songs = part.loc[known, "song_id"].nunique()
                rows.append(
                    dict(property=name, value=value, anchor=anchor, r_pooled=r, n_windows=len(x), n_songs=n_songs)
                )
    return pd.DataFrame(rows, columns=PROPERTY_COLUMNS)


def run(
    config: Mapping, tracks_path: Path, clap_dir: Path, embeddings_dir: Path, rvq_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(analyzability rows with corpus = shifted, per-window table) of every shifted song."""
    from musicot.clap import data as D
    from musicot.clap.model import load
    from musicot.clap.train import embed_windows, load_corpus
    from musicot.rvq.model import decode, encode, load_rvq

    cfg = AnalysisConfig.from_config(config)
    clap_cfg = config["clap"]
    tracks, truths = load_corpus(tracks_path)
    if not len(tracks):
        log.warning("%s holds no songs (analysis.shifted.n_songs 0?): every r is NaN", tracks_path)
    windows = D.build_windows(tracks, truths, clap_cfg["window_s"], clap_cfg["hop_s"], clap_cfg["active_rms"])
    model = load(clap_dir)
    raw = embed_windows(model, tracks, windows, tracks_path, float(clap_cfg["window_s"]))
    rvq = load_rvq(rvq_dir)
    codes = encode(rvq, raw) if len(raw) else np.zeros((0, 0), np.int64)
    quantized = decode(rvq, codes) if len(raw) else raw
    anchors = anchor_embeddings(embeddings_dir, cfg.anchors)
    volume = pd.read_parquet(Path(tracks_path).parent / "stem_volume.parquet")
    truth = window_volume_from_truth(volume, windows).reindex(columns=["song_id", "window", "stem", "rms"])
    rows, sims = analyzability_rows(windows, quantized, raw, anchors, truth, None, cfg)
    rows.insert(0, "corpus", "shifted")
    return rows[SHIFTED_COLUMNS], windows_table(windows, codes, sims, truth, None, cfg.anchors)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--tracks", type=Path, required=True, help="results/shifted/tracks.parquet")
    parser.add_argument("--clap", type=Path, required=True, help="trained CLAP folder (results/clap/model)")
    parser.add_argument("--embeddings", type=Path, required=True, help="CLAP embedding folder (anchor texts)")
    parser.add_argument("--rvq", type=Path, required=True, help="RVQ folder (model.safetensors)")
    parser.add_argument("--out", type=Path, required=True, help="analyzability CSV to write")
    parser.add_argument("--windows-out", type=Path, required=True, help="per-window parquet to write")
    parser.add_argument("--by-property-out", type=Path, default=None, help="r per drawn property CSV to write")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = load_config(args.config)
    rows, per_window = run(config, args.tracks, args.clap, args.embeddings, args.rvq)
    write_results(rows, per_window, args.out, args.windows_out)
    if args.by_property_out is not None:
        songs = pd.read_parquet(Path(args.tracks).parent / "songs.parquet")
        anchors = AnalysisConfig.from_config(config).anchors
        table = by_property(per_window, songs, anchors, config["analysis"]["shifted"]["tempo"])
        table.to_csv(args.by_property_out, index=False)


if __name__ == "__main__":
    main()
