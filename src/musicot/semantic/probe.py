"""Score the semantic tokens against the corpus truth (valid split) and gather the stage's quality table.

    python -m musicot.semantic.probe --config CFG --tracks results/corpus/tracks.parquet \
        --model results/semantic/encoder --tokens results/semantic/tokens \
        --metrics results/semantic/metrics.json --quality results/semantic/quality.csv [--threads 2]

Token rate, codebook perplexity and dead codes of the written tokens; linear probes (see
musicot.semantic.probes) of per-frame stem activity and singing on every encoder layer, on the
token one-hot and on the raw stacked log-mel rows (the baseline: what the SSL step added); and the
training's own numbers from the tokenizer's metrics.json (SSL loss and accuracy, CTC CER), so
quality.csv (step, metric, value, n, note) holds the whole stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.prep.common import load_tracks, write_quality
from musicot.semantic import probes as P
from musicot.semantic.config import SemanticConfig, cli_config
from musicot.semantic.data import PROBE_STREAM
from musicot.semantic.tokenizer import Tokenizer
from musicot.training import step_rng

log = logging.getLogger("musicot.semantic.probe")

BASELINE = "logmel"
# The same rows standardised per frame, as the Conformer's input LayerNorm sees them: that norm drops
# each frame's level, so this, not the raw rows, is the input the SSL layers are to improve on.
FRAME_NORM = "logmel_framenorm"
TOKENS = "tokens"


def _truth(tracks_path: Path, name: str, columns: list[str]) -> pd.DataFrame:
    path = Path(tracks_path).parent / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=columns)


def _load_tokens(tokens_dir: Path, song_id: str, n: int) -> np.ndarray:
    path = tokens_dir / f"{song_id}.npy"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m musicot.semantic.tokens first")
    codes = np.load(path)
    if len(codes) != n:
        raise ValueError(f"{path} has {len(codes)} tokens but the song has {n} frames: tokens of another tokenizer?")
    return codes


def frame_table(
    tok: Tokenizer,
    tracks: pd.DataFrame,
    truth: tuple[pd.DataFrame, pd.DataFrame],
    tokens_dir: Path,
    levels: dict[str, float],
    cfg: SemanticConfig,
    keep,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """{input name: (frames, d) array} and {target: (frames,) labels} of the kept frames of `tracks`' songs.

    `truth` is (stem_volume, lyric_words); `keep(song_id, n_frames)` gives the row indices of a song
    to keep (all, or a random subset); `levels` are the stems' train-split levels (`probes.stem_levels`).
    """
    volume, words = truth
    by_song_volume = dict(tuple(volume.groupby(volume["song_id"].astype(str))))
    by_song_words = dict(tuple(words.groupby(words["song_id"].astype(str))))
    inputs: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[np.ndarray]] = {t: [] for t in P.TARGETS}
    for t in tracks.itertuples():
        song = str(t.song_id)
        feats = tok.file_features(str(t.audio_path))
        rows = keep(song, len(feats))
        times = P.frame_times(len(feats), tok.features_cfg.frame_s)[rows]
        codes = _load_tokens(tokens_dir, song, len(feats))[rows]
        named = {
            BASELINE: feats[rows],
            FRAME_NORM: P.frame_norm(feats[rows]),
            TOKENS: P.one_hot(codes, len(tok.centroids)),
        }
        for i, states in enumerate(tok.layer_states(feats)):
            named[f"layer{i}"] = states[rows]
        for name, x in named.items():
            inputs.setdefault(name, []).append(x)
        empty = pd.DataFrame(columns=["stem", "start", "end", "rms"])
        for stem, y in P.stem_labels(by_song_volume.get(song, empty), times, levels, cfg.probe.active_fraction).items():
            labels[stem].append(y)
        song_words = by_song_words.get(song, pd.DataFrame(columns=["start", "end"]))
        known = len(song_words) > 0 or not str(t.lyrics or "").strip()  # timed words, or no lyrics at all
        labels[P.SUNG].append(P.sung_labels(song_words, times, known))
    stacked = {k: np.concatenate(v) for k, v in inputs.items()}
    return stacked, {k: np.concatenate(v) for k, v in labels.items()}


def _train_keep(tracks: pd.DataFrame, tok: Tokenizer, max_frames: int, seed: int):
    """A keep(song, n) drawing `max_frames` train frames at random over all train songs (by their durations)."""
    frame_s = tok.features_cfg.frame_s
    counts = {str(t.song_id): int(np.ceil(t.duration_s / frame_s)) for t in tracks.itertuples()}
    offsets = np.cumsum([0, *counts.values()])
    total = int(offsets[-1])
    chosen = np.sort(step_rng(seed, PROBE_STREAM, 0).choice(total, size=min(max_frames, total), replace=False))
    start = dict(zip(counts, offsets[:-1], strict=True))

    def keep(song: str, n: int) -> np.ndarray:
        a = start[song]
        rows = chosen[(chosen >= a) & (chosen < a + counts[song])] - a
        return rows[rows < n]

    return keep


def run_probes(tok: Tokenizer, cfg: SemanticConfig, tracks_path: Path, tokens_dir: Path) -> dict:
    """Balanced accuracy per (target, input), positive rates and stem levels."""
    tracks = load_tracks(tracks_path, splits=("train", "valid"))
    train, valid = tracks[tracks["split"] == "train"], tracks[tracks["split"] == "valid"]
    if not len(train) or not len(valid):
        raise ValueError(f"{tracks_path}: the probes fit on train-split songs and score valid-split ones; one is empty")
    volume = _truth(tracks_path, "stem_volume", ["song_id", "stem", "frame", "start", "end", "rms"])
    words = _truth(tracks_path, "lyric_words", ["song_id", "line", "word_index", "word", "start", "end"])
    levels = P.stem_levels(volume, list(train["song_id"].astype(str)), cfg.probe.level_quantile)
    keep_train = _train_keep(train, tok, cfg.probe.max_train_frames, cfg.seed)
    x_tr, y_tr = frame_table(tok, train, (volume, words), tokens_dir, levels, cfg, keep_train)
    x_va, y_va = frame_table(tok, valid, (volume, words), tokens_dir, levels, cfg, lambda song, n: np.arange(n))
    bacc: dict[str, dict[str, float]] = {}
    n_valid, positive = {}, {}
    for target in P.TARGETS:
        ok_tr, ok_va = np.isfinite(y_tr[target]), np.isfinite(y_va[target])
        n_valid[target], positive[target] = int(ok_va.sum()), float(np.nanmean(y_va[target])) if ok_va.any() else np.nan
        bacc[target] = {}
        for name in x_tr:
            bacc[target][name] = P.probe(
                x_tr[name][ok_tr], y_tr[target][ok_tr], x_va[name][ok_va], y_va[target][ok_va], cfg.probe
            )
        log.info("probe %s: %s", target, " ".join(f"{k}={v:.3f}" for k, v in bacc[target].items()))
    layers = [k for k in x_tr if k.startswith("layer")]
    mean = {k: float(np.nanmean([bacc[t][k] for t in P.TARGETS])) for k in [BASELINE, FRAME_NORM, *layers, TOKENS]}
    best = max(layers, key=lambda k: mean[k])
    best_layer = int(best.removeprefix("layer"))
    return {
        "bacc": bacc,
        "mean_bacc": mean,
        "best_layer": best_layer,
        "n_valid": n_valid,
        "positive_rate": positive,
        "levels": levels,
    }


def token_stats(tok: Tokenizer, tracks_path: Path, tokens_dir: Path) -> dict:
    """Token rate of the valid split and codebook usage on valid and on every song."""
    tracks = load_tracks(tracks_path)
    codes = {str(t.song_id): np.load(tokens_dir / f"{t.song_id}.npy") for t in tracks.itertuples()}
    valid = tracks[tracks["split"] == "valid"]
    valid_codes = [codes[str(s)] for s in valid["song_id"]]
    n = len(tok.centroids)
    return {
        "tokens_per_s_valid": sum(len(c) for c in valid_codes) / max(float(valid["duration_s"].sum()), 1e-9),
        "valid": {**P.codebook_stats(valid_codes, n), "frames": sum(len(c) for c in valid_codes)},
        "all": {**P.codebook_stats(list(codes.values()), n), "frames": sum(len(c) for c in codes.values())},
        "n_tokens": n,
        "songs_valid": len(valid),
        "dtype": str(next(iter(codes.values())).dtype) if codes else "",
    }


def quality_rows(train: dict, tokens: dict, probe: dict, cfg: SemanticConfig) -> list[dict]:
    """The stage's long quality table: training (ssl, ctc), tokens, probes."""
    rows = []

    def add(step: str, metric: str, value, n: int, note: str = "") -> None:
        rows.append({"step": step, "metric": metric, "value": float(value), "n": int(n), "note": note})

    ssl = train["ssl"]
    steps = cfg.ssl.steps
    for key, label in (("loss_first_last", "train_loss"), ("valid_loss_first_last", "valid_loss")):
        add("ssl", f"{label}_first", ssl[key][0], steps, "masked-prediction cross-entropy, first logged value")
        add("ssl", f"{label}_last", ssl[key][1], steps, "masked-prediction cross-entropy, last logged value")
    chance = f"chance {ssl['chance_acc']:.4f} (1 / codebook size)"
    add("ssl", "valid_acc_first", ssl["valid_acc_first_last"][0], steps, chance)
    add("ssl", "valid_acc_last", ssl["valid_acc_first_last"][1], steps, chance)
    add("ssl", "train_wall_s", train["walls_s"].get("ssl", np.nan), steps)
    ctc = train["ctc"]
    add("ctc", "enabled", ctc["enabled"], 0, "" if ctc["enabled"] else "semantic.ctc.enabled is false")
    if ctc["enabled"]:
        n_train = ctc["songs_train_timed"] + ctc["songs_train_untimed"]
        add("ctc", "songs_train_timed", ctc["songs_train_timed"], n_train, "train songs with timed lyric lines")
        add("ctc", "songs_train_untimed", ctc["songs_train_untimed"], n_train, "train songs without: no CTC data")
        add("ctc", "lines_train", ctc["lines_train"], ctc["songs_train_timed"])
        add("ctc", "loss_first", ctc["loss_first_last"][0], cfg.ctc.steps, "CTC loss per target character")
        add("ctc", "loss_last", ctc["loss_first_last"][1], cfg.ctc.steps, "CTC loss per target character")
        note = "greedy CTC decoding of valid-split lyric lines, character error rate"
        add("ctc", "cer_valid_mix", ctc["cer_valid_mix"], ctc["lines_valid"], note + " (mix)")
        if "cer_valid_vocals" in ctc:
            add("ctc", "cer_valid_vocals", ctc["cer_valid_vocals"], ctc["lines_valid_vocals"], note + " (vocals stem)")
        add("ctc", "train_wall_s", train["walls_s"].get("ctc", np.nan), cfg.ctc.steps)
    n = tokens["n_tokens"]
    add("tokens", "tokens_per_s", tokens["tokens_per_s_valid"], tokens["songs_valid"], "valid split; paper 25")
    for split in ("valid", "all"):
        frames = tokens[split]["frames"]
        add("tokens", f"perplexity_{split}", tokens[split]["perplexity"], frames, f"codebook size {n}")
        add("tokens", f"dead_codes_{split}", tokens[split]["dead_codes"], frames, f"codes never used, of {n}")
    chosen = f"layer{cfg.layer}"
    for target, by_input in probe["bacc"].items():
        for name, value in by_input.items():
            note = "balanced accuracy, chance 0.5"
            note += {
                BASELINE: "; raw stacked log-mel baseline",
                FRAME_NORM: "; log-mel standardised per frame, as the encoder's input LayerNorm sees it",
                TOKENS: "; token one-hot",
            }.get(name, "")
            note += "; the tokens' layer" if name == chosen else ""
            add("probe", f"bacc_{target}_{name}", value, probe["n_valid"][target], note)
    for name, value in probe["mean_bacc"].items():
        add("probe", f"mean_bacc_{name}", value, len(probe["bacc"]), "mean balanced accuracy over the targets")
    add("probe", "best_layer", probe["best_layer"], cfg.model.layers, f"highest mean; semantic.layer = {cfg.layer}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, semantic)")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet (truth beside it)")
    parser.add_argument("--model", type=Path, required=True, help="tokenizer folder written by musicot.semantic.train")
    parser.add_argument("--tokens", type=Path, required=True, help="folder written by musicot.semantic.tokens")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics.json to write")
    parser.add_argument("--quality", type=Path, required=True, help="quality.csv to write")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default semantic.threads)")
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    started = time.perf_counter()
    tok = Tokenizer.load(args.model)
    train = json.loads((args.model / "metrics.json").read_text())
    tokens = token_stats(tok, args.tracks, args.tokens)
    probe = run_probes(tok, cfg, args.tracks, args.tokens)
    metrics = {"layer": cfg.layer, "tokens": tokens, "probe": probe, "train": {k: train[k] for k in ("ssl", "ctc")}}
    metrics["train"]["ssl"].pop("history", None)
    metrics["train"]["ctc"].pop("history", None)
    metrics["probe_wall_s"] = time.perf_counter() - started
    metrics["train_walls_s"] = train["walls_s"]
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(metrics, indent=2, default=float))
    quality = write_quality(quality_rows(train, tokens, probe, cfg), args.quality)
    print(quality.to_string(index=False))


if __name__ == "__main__":
    main()
