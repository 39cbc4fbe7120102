"""Train the semantic tokenizer: BEST-RQ encoder, optional CTC fine-tune on lyrics, k-means on one layer.

    python -m musicot.semantic.train --config CFG --tracks results/corpus/tracks.parquet \
        --out results/semantic/encoder --state results/semantic/state [--threads 2]

Reads the mixes of the train and valid songs once (features in memory) and the timed lyric lines
beside tracks.parquet (lyric_lines.parquet). Resumable states: --state/ssl and --state/ctc. Writes
the `Tokenizer` folder to --out (see musicot.semantic.tokenizer) with metrics.json: SSL history
(masked-prediction loss, valid accuracy beside chance), CTC history and the valid-split character
error rate of greedy decoding (on the mix and on the isolated vocals stem when the corpus has it),
k-means frame count, parameter counts and wall times per part.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from sklearn.cluster import MiniBatchKMeans
from threadpoolctl import threadpool_limits

from musicot.prep.common import load_tracks
from musicot.semantic.config import KmeansConfig, SemanticConfig, cli_config
from musicot.semantic.ctc import CharVocab, cer, line_examples, require_lines, train_ctc, transcribe
from musicot.semantic.data import KMEANS_STREAM, Songs, load_songs, normalised_songs, timed_lines, vocals_stem
from musicot.semantic.features import Normaliser, file_features
from musicot.semantic.model import parameter_count
from musicot.semantic.ssl import train_ssl
from musicot.semantic.tokenizer import TOKEN_DTYPE, Tokenizer
from musicot.training import step_rng

log = logging.getLogger("musicot.semantic.train")

METRICS_FILE = "metrics.json"
CTC_HEAD_FILE = "ctc_head.safetensors"
LINES_FILE = "lyric_lines.parquet"
# Settings that change only the logs of a saved state, not its weights: a state saved with other
# values still resumes. Step counts are *not* among them: the cosine schedule spans them.
LOG_ONLY_KEYS = ("eval_every", "checkpoint_every", "log_every")
EXAMPLES = 5  # transcripts kept in metrics.json, so a reader sees what the CER means


def _resume_key(settings: object) -> dict:
    return {k: v for k, v in asdict(settings).items() if k not in LOG_ONLY_KEYS}


def _load_lines(tracks_path: Path) -> pd.DataFrame:
    path = Path(tracks_path).parent / LINES_FILE
    if not path.exists():
        return pd.DataFrame(columns=["song_id", "line", "text", "start", "end"])
    return pd.read_parquet(path)


def first_last(history: dict, key: str | None = None) -> tuple[float, float]:
    """First and last logged training loss (key None) or evaluation metric `key` of a loop history."""
    values = [v for _, v in history["train"]] if key is None else [m[key] for _, m in history["eval"] if key in m]
    return (values[0], values[-1]) if values else (float("nan"), float("nan"))


def run_ctc(
    cfg: SemanticConfig,
    encoder,
    songs: Songs,
    normaliser: Normaliser,
    tracks: pd.DataFrame,
    tracks_path: Path,
    state: Path,
    run: dict,
):
    """CTC fine-tune: the fine-tuned model, its vocabulary and metrics (CER on valid mix and vocals)."""
    frame_s = cfg.features.frame_s
    lines = _load_lines(tracks_path)
    train_ids, valid_ids = songs.of_split("train"), songs.of_split("valid")
    train_lines, valid_lines = timed_lines(lines, train_ids), timed_lines(lines, valid_ids)
    train = line_examples(train_lines, songs.features, cfg.ctc.context_s, frame_s)
    require_lines(train, str(Path(tracks_path).parent / LINES_FILE))
    valid = line_examples(valid_lines, songs.features, cfg.ctc.context_s, frame_s)
    vocab = CharVocab.from_texts(train.texts)
    timed = set(train_lines["song_id"].astype(str))
    log.info(
        "ctc: %d train lines from %d of %d train songs (the rest have no timed lyrics), %d valid lines",
        len(train),
        len(timed),
        len(train_ids),
        len(valid),
    )
    model, history = train_ctc(encoder, train, valid, vocab, cfg.ctc, state, cfg.seed, run)
    model.eval()
    hyps = transcribe(model, valid, vocab, cfg.ctc.batch_size)
    metrics = {
        "history": history,
        "songs_train_timed": len(timed),
        "songs_train_untimed": len(train_ids) - len(timed),
        "lines_train": len(train),
        "lines_valid": len(valid),
        "vocab": vocab.chars[1:],
        "loss_first_last": first_last(history),
        "cer_valid_mix": cer(valid.texts, hyps),
        "examples_valid_mix": [{"ref": r, "hyp": h} for r, h in zip(valid.texts, hyps, strict=True)][:EXAMPLES],
    }
    # The same valid lines heard from the isolated vocals stem, where the corpus has stems.
    stems = {str(t.song_id): vocals_stem(str(t.stems_dir or "")) for t in tracks.itertuples()}
    stems = {s: p for s, p in stems.items() if s in valid_ids and p is not None}
    if stems:
        feats = {s: normaliser(file_features(p, cfg.features)) for s, p in stems.items()}
        vocal = line_examples(valid_lines, feats, cfg.ctc.context_s, frame_s)
        metrics["cer_valid_vocals"] = cer(vocal.texts, transcribe(model, vocal, vocab, cfg.ctc.batch_size))
        metrics["lines_valid_vocals"] = len(vocal)
    return model, vocab, metrics


def fit_kmeans(frames: np.ndarray, n_tokens: int, cfg: KmeansConfig, seed: int) -> np.ndarray:
    """(n_tokens, dim) float32 centroids of MiniBatchKMeans on (n, dim) frames."""
    if len(frames) < n_tokens:
        raise ValueError(f"k-means of {n_tokens} codes needs at least as many frames, got {len(frames)}")
    if n_tokens > np.iinfo(TOKEN_DTYPE).max + 1:
        raise ValueError(f"{n_tokens} tokens do not fit the int16 token files")
    km = MiniBatchKMeans(
        n_clusters=n_tokens, batch_size=cfg.batch_size, max_iter=cfg.max_iter, n_init=cfg.n_init, random_state=seed
    )
    # One BLAS/OpenMP thread, as in `probes.probe`: with torch's pool alive the default threads fight
    # (measured 3.8 s -> 0.5 s on 2 cores).
    with threadpool_limits(limits=1):
        km.fit(frames.astype(np.float32))
    return km.cluster_centers_.astype(np.float32)


def kmeans_frames(tok: Tokenizer, songs: list[np.ndarray], max_frames: int, seed: int) -> np.ndarray:
    """Layer `tok.layer` states of the train songs, at most `max_frames` rows drawn without replacement."""
    states = np.concatenate([tok.layer_states(f, [tok.layer])[0] for f in songs])
    if len(states) > max_frames:
        keep = step_rng(seed, KMEANS_STREAM, 0).choice(len(states), size=max_frames, replace=False)
        states = states[np.sort(keep)]
    return states


def train(cfg: SemanticConfig, tracks_path: Path, out: Path, state: Path) -> dict:
    """Train everything and write the tokenizer folder `out`; returns the metrics written."""
    started = time.perf_counter()
    walls: dict[str, float] = {}
    tracks = load_tracks(tracks_path, splits=("train", "valid"))
    t0 = time.perf_counter()
    raw = load_songs(tracks, cfg.features)
    train_ids = sorted(tracks.loc[tracks["split"] == "train", "song_id"].astype(str))
    if not train_ids:
        raise ValueError(f"{tracks_path} has no train-split song: the semantic encoder has nothing to train on")
    normaliser = Normaliser.fit(raw[s] for s in train_ids)
    songs = normalised_songs(tracks, raw, normaliser)
    walls["features"] = time.perf_counter() - t0
    train_x = [songs.features[s] for s in songs.of_split("train")]
    valid_x = [songs.features[s] for s in songs.of_split("valid")]
    log.info(
        "semantic: features of %d train and %d valid songs in %.1f s", len(train_x), len(valid_x), walls["features"]
    )

    checksums = tracks.get("content_sha1", tracks["song_id"]).astype(str)
    base = {
        "seed": cfg.seed,
        "data": sorted(zip(tracks["song_id"].astype(str), tracks["split"].astype(str), checksums, strict=True)),
        "features": asdict(cfg.features),
        "model": asdict(cfg.model),
        "ssl": _resume_key(cfg.ssl),
    }
    bestrq, ssl_history = train_ssl(train_x, valid_x, cfg.features, cfg.model, cfg.ssl, state / "ssl", cfg.seed, base)
    walls["ssl"] = ssl_history["wall_s"]
    encoder = bestrq.encoder
    metrics: dict = {
        "ssl": {
            "history": ssl_history,
            "loss_first_last": first_last(ssl_history),
            "valid_loss_first_last": first_last(ssl_history, "loss"),
            "valid_acc_first_last": first_last(ssl_history, "acc"),
            "chance_acc": ssl_history["chance_acc"],
        },
        "ctc": {"enabled": cfg.ctc.enabled},
    }
    ctc_model = vocab = None
    if cfg.ctc.enabled:
        ctc_run = {**base, "ctc": _resume_key(cfg.ctc)}  # base holds the SSL settings and steps it starts from
        ctc_model, vocab, ctc_metrics = run_ctc(
            cfg, encoder, songs, normaliser, tracks, tracks_path, state / "ctc", ctc_run
        )
        walls["ctc"] = ctc_metrics["history"]["wall_s"]
        metrics["ctc"].update(ctc_metrics)
        encoder = ctc_model.wav2vec2_bert  # the tokens come from the pronunciation-aware encoder

    t0 = time.perf_counter()
    chunk = max(1, round(cfg.chunk_s / cfg.features.frame_s))
    tok = Tokenizer(encoder, cfg.features, normaliser, cfg.layer, None, chunk)
    frames = kmeans_frames(tok, train_x, cfg.kmeans.max_frames, cfg.seed)
    tok.centroids = torch.from_numpy(fit_kmeans(frames, cfg.n_tokens, cfg.kmeans, cfg.seed))
    walls["kmeans"] = time.perf_counter() - t0
    metrics["kmeans"] = {"frames": len(frames), "layer": cfg.layer, "n_tokens": cfg.n_tokens}

    out.mkdir(parents=True, exist_ok=True)
    tok.save(out)
    if ctc_model is not None:
        vocab.save(out)
        save_file({k: v.contiguous() for k, v in ctc_model.lm_head.state_dict().items()}, str(out / CTC_HEAD_FILE))
    metrics["parameters"] = {"encoder": parameter_count(bestrq.encoder), "ssl_head": parameter_count(bestrq.head)}
    metrics["walls_s"] = walls
    metrics["total_wall_s"] = time.perf_counter() - started
    metrics["songs"] = {"train": len(train_x), "valid": len(valid_x)}
    metrics["config"] = {"seed": cfg.seed, "layer": cfg.layer, "n_tokens": cfg.n_tokens, "chunk_s": cfg.chunk_s}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=float))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, semantic)")
    parser.add_argument(
        "--tracks", type=Path, required=True, help="results/corpus/tracks.parquet (truth tables beside it)"
    )
    parser.add_argument("--out", type=Path, required=True, help="tokenizer folder to write")
    parser.add_argument("--state", type=Path, required=True, help="folder for the resumable training states")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default semantic.threads)")
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    metrics = train(cfg, args.tracks, args.out, args.state)
    summary = {
        "ssl_loss_first_last": metrics["ssl"]["loss_first_last"],
        "ssl_valid_acc_first_last": metrics["ssl"]["valid_acc_first_last"],
        "cer_valid_mix": metrics["ctc"].get("cer_valid_mix"),
        "walls_s": metrics["walls_s"],
    }
    print(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
