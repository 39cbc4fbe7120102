"""Table 1's metrics of one system's generated songs: FAD on CLAP (with CI and FAD∞), aesthetics, RTF.

    python -m musicot.metrics.evaluate --config CFG --tracks results/corpus/tracks.parquet \
        --clap results/clap/model --systems results/generate/base results/generate/musicot ... \
        --paper workflow/resources/paper_table1.yaml --out results/metrics

Writes results/metrics/reference/ (the reference and floor clips' window embeddings), for each system
<system>.json (FAD, aesthetics, RTF) and <system>/ (its window embeddings, aesthetics.csv), and
comparisons.csv (the paper's orderings with paired CIs, `musicot.metrics.compare`).

FAD as fadtk computes it: every file cut into CLAP windows (the model's window, `evaluate.fad.hop_s`
hop), Gaussians fitted to the window embeddings of each set, their Fréchet distance
(`musicot.metrics.fad`). The reference is real audio cut into clips as long as the generated songs,
so that both sets are windowed alike (a generated song shorter than a window is one zero-padded
window; so is each reference clip). `reference` also embeds real songs of `evaluate.fad.floor_split`
the same way: scored against the reference like a system, they show what FAD reaches between two
sets of real songs of this corpus at this sample size (the floor).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.config import load_config
from musicot.metrics.fad import bootstrap_ci, fad, fad_infinity

log = logging.getLogger("musicot.metrics")

WINDOWS_FILE, EMBEDDINGS_FILE = "windows.parquet", "windows.npy"
REFERENCE, FLOOR = "reference", "floor"
COMPARISONS_FILE = "comparisons.csv"
GENERATION_FILE = "generation.json"  # musicot.generate.run.SUMMARY_FILE, without importing torch-heavy modules


def clip_starts(duration_s: float, clip_s: float) -> np.ndarray:
    """Starts of the whole `clip_s` clips a song holds (at least one: a shorter song is one clip)."""
    return np.arange(max(1, int(np.floor(duration_s / clip_s + 1e-9)))) * clip_s


def embed_files(
    paths: Sequence[Path], clap, hop_s: float, clip_s: float | None = None, labels: Sequence[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """CLAP window embeddings of every file (of every `clip_s` clip of it when given): (table, (n, d) array).

    table: song (file stem or `labels`), clip, window, start (seconds in the file)."""
    from musicot.clap import data as D

    sr = clap.spec.sample_rate
    window_s = clap.spec.clip_samples / sr
    rows, embeddings = [], []
    for k, path in enumerate(paths):
        mono = D.load_mono(path, sr)
        if not len(mono) or not np.isfinite(mono).all():
            raise ValueError(f"{path}: no samples or non-finite samples: cannot embed it")
        starts = [0.0] if clip_s is None else clip_starts(len(mono) / sr, clip_s)
        for c, start in enumerate(starts):
            segment = mono if clip_s is None else mono[round(start * sr) : round((start + clip_s) * sr)]
            windows = D.sliding_windows(segment, sr, window_s, hop_s)
            embeddings.append(clap.embed_audio(windows))
            song = labels[k] if labels is not None else Path(path).stem
            rows += [dict(song=song, clip=c, window=w, start=float(start) + w * hop_s) for w in range(len(windows))]
    if not embeddings:
        raise ValueError("no audio files to embed")
    return pd.DataFrame(rows), np.concatenate(embeddings).astype(np.float32)


def save_embeddings(table: pd.DataFrame, embeddings: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_parquet(folder / WINDOWS_FILE, index=False)
    np.save(folder / EMBEDDINGS_FILE, embeddings)


def load_embeddings(folder: Path) -> tuple[pd.DataFrame, np.ndarray]:
    table, emb = pd.read_parquet(folder / WINDOWS_FILE), np.load(folder / EMBEDDINGS_FILE)
    if len(table) != len(emb):
        raise ValueError(f"{folder}: {len(table)} window rows but {len(emb)} embeddings")
    return table, emb


def fad_summary(
    evaluated: np.ndarray, songs: np.ndarray, reference: np.ndarray, cfg: Mapping, seed: int, what: str
) -> dict:
    """FAD with its bootstrap CI over songs and FAD∞; every count it rests on."""
    rng = np.random.default_rng([seed, 31])
    value = fad(evaluated, reference)
    out = dict(
        value=value,
        ci_low=None,
        ci_high=None,
        confidence=cfg["confidence"],
        fad_inf=None,
        n_songs=len(np.unique(songs)),
        n_windows=len(evaluated),
        n_reference_windows=len(reference),
        reference=what,
    )
    if cfg["bootstrap"] and out["n_songs"] >= 2:
        out["ci_low"], out["ci_high"] = bootstrap_ci(
            evaluated, reference, songs, rng, cfg["bootstrap"], cfg["confidence"]
        )
    min_n = max(3, len(evaluated) // 4)
    if len(evaluated) >= 2 * min_n:
        out["fad_inf"], _ = fad_infinity(evaluated, reference, rng, points=cfg["inf_points"], min_n=min_n)
    return out


def reference_sets(config: Mapping, tracks: pd.DataFrame, clap) -> tuple[pd.DataFrame, np.ndarray]:
    """Embeddings of the reference split's clips (set `reference`) and of the floor split's (set `floor`)."""
    fcfg = config["evaluate"]["fad"]
    clip_s = float(config["lm"]["sample"]["duration_s"])
    tables, arrays = [], []
    for name, split in ((REFERENCE, fcfg["reference_split"]), (FLOOR, fcfg["floor_split"])):
        if not split:
            continue
        songs = tracks[tracks["split"] == split]
        if name == REFERENCE and not len(songs):
            raise ValueError(
                f"no song in the reference split {split!r}: FAD has nothing to compare with "
                "(set evaluate.fad.reference_split to a split that has songs, or give the corpus a reference split)"
            )
        if not len(songs):
            continue
        table, emb = embed_files(
            [Path(p) for p in songs["audio_path"]], clap, fcfg["hop_s"], clip_s, list(songs["song_id"])
        )
        tables.append(table.assign(set=name, split=split))
        arrays.append(emb)
    return pd.concat(tables, ignore_index=True), np.concatenate(arrays)


def system_metrics(config: Mapping, songs_dir: Path, reference_dir: Path, clap, out_dir: Path) -> dict:
    """results/metrics/<system>.json's content; window embeddings and aesthetics rows go to `out_dir`."""
    from musicot.metrics.aesthetics import score_songs

    fcfg, seed = config["evaluate"]["fad"], int(config["seed"])
    generation = json.loads((songs_dir / GENERATION_FILE).read_text())
    files = sorted(songs_dir.glob("*.flac"))
    if len(files) != generation["n_prompts"]:
        raise ValueError(f"{songs_dir}: {len(files)} songs but generation.json lists {generation['n_prompts']}")
    table, emb = embed_files(files, clap, fcfg["hop_s"])
    save_embeddings(table, emb, out_dir)
    ref_table, ref_emb = load_embeddings(reference_dir)
    is_ref = (ref_table["set"] == REFERENCE).to_numpy()
    n_ref = ref_table.loc[is_ref, "song"].nunique()
    what = f"{fcfg['reference_split']} split, {n_ref} songs in {generation['duration_s']:g} s clips"
    metrics = dict(
        system=generation["system"],
        lm=generation["lm"],
        variant=generation["variant"],
        sample=generation["sample"],
        n_songs=len(files),
        duration_s=generation["duration_s"],
        fad=fad_summary(emb, table["song"].to_numpy(), ref_emb[is_ref], fcfg, seed, what),
    )
    if (~is_ref).any():
        floor = ref_table[~is_ref]
        metrics["fad_floor"] = fad_summary(
            ref_emb[~is_ref], floor["song"].to_numpy(), ref_emb[is_ref], fcfg, seed, what
        )
        metrics["fad_floor"]["songs"] = f"{fcfg['floor_split']} split (real audio)"
    scores, summary = score_songs(config["evaluate"]["aesthetics"]["checkpoint"], files)
    if scores is not None:
        scores.to_csv(out_dir / "aesthetics.csv", index=False)
    metrics["aesthetics"] = summary
    metrics["rtf"] = {**generation["rtf"], "hardware": generation["hardware_text"]}
    return metrics


def evaluate_all(
    config: Mapping, tracks: pd.DataFrame, clap, systems: Sequence[Path], paper: Mapping, out: Path
) -> None:
    """The reference embedded once, every system scored, the paper's orderings tested: one process, so the
    CLAP model (whose import and build take ~15 s here) loads once for all of them."""
    from musicot.metrics.compare import compare

    table, emb = reference_sets(config, tracks, clap)
    save_embeddings(table, emb, out / REFERENCE)
    log.info("reference windows: %s", table.groupby("set").size().to_dict())
    for songs in systems:
        metrics = system_metrics(config, songs, out / REFERENCE, clap, out / songs.name)
        (out / f"{songs.name}.json").write_text(json.dumps(metrics, indent=2))
        log.info(
            "%s: FAD %.4f [%s, %s]",
            songs.name,
            metrics["fad"]["value"],
            metrics["fad"]["ci_low"],
            metrics["fad"]["ci_high"],
        )
    ecfg, fcfg = config["evaluate"], config["evaluate"]["fad"]
    names = [p.name for p in systems]
    if ecfg["analyze_system"] in names and len(names) > 1:
        orderings = compare(
            {name: out / name for name in names},
            out / REFERENCE,
            paper,
            ecfg["analyze_system"],
            max(fcfg["bootstrap"], 100),
            fcfg["confidence"],
            int(config["seed"]),
        )
    else:
        orderings = pd.DataFrame(columns=["metric", "system", "versus", "paper_delta", "delta", "ci_low", "ci_high"])
    orderings.to_csv(out / COMPARISONS_FILE, index=False)
    log.info("orderings:\n%s", orderings.round(4).to_string(index=False))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
    parser.add_argument("--clap", type=Path, required=True, help="CLAP model folder")
    parser.add_argument("--systems", type=Path, nargs="+", required=True, help="results/generate/<system> folders")
    parser.add_argument("--paper", type=Path, required=True, help="workflow/resources/paper_table1.yaml")
    parser.add_argument("--out", type=Path, required=True, help="results/metrics")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    import torch
    import yaml

    from musicot.clap.model import load
    from musicot.prep.common import load_tracks

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    config, paper = load_config(args.config), yaml.safe_load(args.paper.read_text())
    evaluate_all(config, load_tracks(args.tracks), load(args.clap), args.systems, paper, args.out)


if __name__ == "__main__":
    main()
