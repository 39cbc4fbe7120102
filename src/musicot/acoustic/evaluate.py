"""Does audio survive the chain? The validation songs as originals, VAE-GAN reconstructions, round trips
through the fixed mel space (when the DiT models it) and DiT re-syntheses from their true semantic tokens,
measured against the originals.

    python -m musicot.acoustic.evaluate --config CFG --tracks results/corpus/tracks.parquet \
        --vae results/acoustic/vae --dit results/acoustic/dit --tokens results/semantic/tokens \
        --clap-model results/clap/model --out results/acoustic/eval

For each of the first acoustic.eval.max_songs validation songs, its first max_seconds: multi-resolution
STFT distance (auraloss), log-mel L1, SI-SDR (reconstructions only: Griffin-Lim and diffusion do not keep
phase), our CLAP's cosine to the original and zero-shot stem AUC over the CLAP windows (truth: the corpus'
stem activity), librosa's tempo against the corpus tempo; speed as seconds of audio per wall second for
the DiT and the decoders. Writes metrics.json, quality.csv (version, metric, value, n, note) and the
example song's audio files (examples/<version>.flac) for the spectrogram figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import auraloss
import numpy as np
import pandas as pd
import torch

from musicot.acoustic.codec import MelCodec, VaeCodec
from musicot.acoustic.config import AcousticConfig, cli_config
from musicot.acoustic.data import load_audio
from musicot.acoustic.sample import Renderer
from musicot.acoustic.vae import load_vae
from musicot.audio import resolve_corpus_path

log = logging.getLogger("musicot.acoustic.evaluate")

ORIGINAL, RECON, MEL, RESYN, RESYN_CLAP = (
    "original",
    "vae_reconstruction",
    "mel_roundtrip",
    "resynthesis",
    "resynthesis_clap",
)
TEMPO_TOLERANCE = 0.04  # MIREX Accuracy2: within 4 % of the truth, or of 2x, 3x, 1/2 or 1/3 of it
GOALS = {RECON: 0.8, RESYN: 0.6}  # CLAP cosine the acoustic issue asks of the default run
AUC_GOAL = 0.1  # stem AUC within this of the originals'


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB (auraloss' SISDRLoss is its negative)."""
    loss = auraloss.time.SISDRLoss()(torch.from_numpy(estimate)[None], torch.from_numpy(reference)[None])
    return float(-loss)


def log_mel_l1(a: np.ndarray, b: np.ndarray, mel: MelCodec) -> float:
    fa, fb = mel.encode(a), mel.encode(b)
    n = min(fa.shape[1], fb.shape[1])
    return float(np.abs(fa[:, :n] - fb[:, :n]).mean())


def tempo_hit(estimate: float, truth: float) -> bool:
    return any(abs(estimate - truth * k) <= TEMPO_TOLERANCE * truth * k for k in (1, 2, 3, 0.5, 1 / 3))


def librosa_tempo(audio: np.ndarray, sr: int) -> float:
    import librosa

    return float(np.atleast_1d(librosa.feature.tempo(y=audio.mean(axis=0), sr=sr))[0])


def clap_windows(tracks: pd.DataFrame, tracks_path: Path, config: Mapping, max_seconds: float) -> pd.DataFrame:
    """The CLAP windows (clap.window_s at clap.hop_s) inside the first max_seconds of each song, with the
    corpus' stem activity (active_<stem>) as embed_clap builds them."""
    from musicot.clap import data as D
    from musicot.clap.train import ClapConfig, load_corpus
    from musicot.config import build

    clap_cfg = build(ClapConfig, config["clap"])
    _, truths = load_corpus(tracks_path)
    windows = D.build_windows(tracks, truths, clap_cfg.window_s, clap_cfg.hop_s, clap_cfg.active_rms)
    return windows[windows["end"] <= max_seconds + 1e-6].reset_index(drop=True)


def clap_embed(model, audio: Mapping[str, np.ndarray], windows: pd.DataFrame, sr: int) -> np.ndarray:
    from musicot.clap.data import to_mono

    csr = model.spec.sample_rate
    n = model.spec.clip_samples
    waves = []
    for w in windows.itertuples():
        mono = to_mono(audio[str(w.song_id)], sr, csr)
        start = round(w.start * csr)
        seg = mono[start : start + n]
        waves.append(np.pad(seg, (0, n - len(seg))))
    return model.embed_audio(np.stack(waves))


def version_metrics(
    name: str,
    audio: dict,
    original: dict,
    windows: pd.DataFrame,
    emb: np.ndarray,
    orig_emb: np.ndarray,
    anchors: np.ndarray,
    tempo_truth: dict,
    sr: int,
    mel: MelCodec,
) -> list[dict]:
    from musicot.clap.data import ANCHORS
    from musicot.clap.train import anchor_auc

    songs = sorted(audio)
    stft = auraloss.freq.MultiResolutionSTFTLoss()
    rows = []

    def add(metric, value, n, note=""):
        rows.append(dict(version=name, metric=metric, value=float(value), n=int(n), note=note))

    dist = [float(stft(torch.from_numpy(audio[s])[None], torch.from_numpy(original[s])[None])) for s in songs]
    add("mr_stft_distance", np.mean(dist), len(songs), "auraloss MultiResolutionSTFTLoss vs the original")
    add(
        "mel_l1",
        np.mean([log_mel_l1(audio[s], original[s], mel) for s in songs]),
        len(songs),
        "mean |log-mel difference| (nats)",
    )
    if name == RECON:
        add(
            "si_sdr_db",
            np.mean([si_sdr(audio[s], original[s]) for s in songs]),
            len(songs),
            "scale-invariant SDR vs the original",
        )
    est = {s: librosa_tempo(audio[s], sr) for s in songs}
    known = [s for s in songs if np.isfinite(tempo_truth.get(s, np.nan)) and tempo_truth[s] > 0]
    if known:
        add(
            "tempo_acc2",
            np.mean([tempo_hit(est[s], tempo_truth[s]) for s in known]),
            len(known),
            "librosa tempo within 4 % of the corpus tempo (or 2x, 3x, 1/2, 1/3)",
        )
        add(
            "tempo_rel_error",
            np.median([abs(est[s] - tempo_truth[s]) / tempo_truth[s] for s in known]),
            len(known),
            "median |librosa - corpus| / corpus",
        )
    if not len(windows):
        return rows  # no CLAP window fits in acoustic.eval.max_seconds: the CLAP rows stay out
    cos = (emb * orig_emb).sum(axis=1)
    add("clap_cosine", cos.mean(), len(cos), "cosine of CLAP window embeddings to the original's")
    scores = {a: emb @ anchors[i] for i, a in enumerate(ANCHORS)}
    aucs = anchor_auc(scores, windows)
    for key, value in aucs.items():
        add(key, value, len(windows), "zero-shot CLAP anchor vs stem activity")
    finite = [v for v in aucs.values() if np.isfinite(v)]
    add("auc_mean", np.mean(finite) if finite else float("nan"), len(windows), "mean over anchors")
    return rows


def evaluate(
    cfg: AcousticConfig,
    config: Mapping,
    tracks_path: Path,
    vae_dir: Path,
    dit_dir: Path,
    tokens_dir: Path,
    clap_model: Path,
    out: Path,
) -> dict:
    from musicot.clap.data import ANCHORS
    from musicot.clap.model import load as load_clap
    from musicot.prep.common import load_tracks

    ec = cfg.eval
    tracks = load_tracks(tracks_path, splits=("valid",))
    if not len(tracks):
        tracks = load_tracks(tracks_path, splits=("train",))
        log.warning("no validation song: measuring train songs instead")
    tracks = tracks.head(ec.max_songs)
    sr = cfg.sample_rate
    original = {
        str(t.song_id): load_audio(resolve_corpus_path(t.audio_path, tracks_path), sr, cfg.channels, ec.max_seconds)
        for t in tracks.itertuples()
    }
    durations = {s: a.shape[1] / sr for s, a in original.items()}
    versions: dict[str, dict[str, np.ndarray]] = {ORIGINAL: original}
    speed: dict[str, float] = {}

    vae = VaeCodec(load_vae(vae_dir))
    recon, enc_s, dec_s = {}, 0.0, 0.0
    for s, a in original.items():
        t0 = time.perf_counter()
        z = vae.encode(a)
        t1 = time.perf_counter()
        recon[s] = vae.decode(z)[:, : a.shape[1]]
        enc_s, dec_s = enc_s + t1 - t0, dec_s + time.perf_counter() - t1
    versions[RECON] = recon
    total_s = sum(durations.values())
    speed["VAE encoder"] = total_s / enc_s
    speed["VAE decoder"] = total_s / dec_s

    mel = MelCodec(cfg.mel, sr, cfg.channels)
    if cfg.space == "mel":
        t0 = time.perf_counter()
        versions[MEL] = {s: mel.decode(mel.encode(a))[:, : a.shape[1]] for s, a in original.items()}
        speed["mel space round trip (Griffin-Lim)"] = total_s / (time.perf_counter() - t0)

    # Re-synthesis from the true tokens alone: no CLAP vector, which would hand the DiT the original's own
    # CLAP embedding and inflate the CLAP cosine measured below.
    renderer = Renderer.load(cfg, dit_dir, vae_dir)
    rendered, dit_s, dec_s = {}, 0.0, 0.0
    for i, (s, a) in enumerate(original.items()):
        tokens = np.load(Path(tokens_dir) / f"{s}.npy").astype(np.int64)
        t0 = time.perf_counter()
        frames = renderer.frames(tokens, durations[s], None, cfg.seed + i)
        t1 = time.perf_counter()
        rendered[s] = renderer.decode(frames, durations[s])[:, : a.shape[1]]
        dit_s, dec_s = dit_s + t1 - t0, dec_s + time.perf_counter() - t1
    versions[RESYN] = rendered
    speed["DiT sampling"] = total_s / dit_s
    speed[f"{cfg.space} decoding of the DiT frames"] = total_s / dec_s

    # The codecs return whole frames: compare every version over the length they all have.
    for s in original:
        n = min(v[s].shape[1] for v in versions.values())
        for v in versions.values():
            v[s] = v[s][:, :n]
    clap = load_clap(clap_model)
    windows = clap_windows(tracks, tracks_path, config, ec.max_seconds)
    anchors = clap.embed_text(list(ANCHORS))
    tempo_truth = dict(zip(tracks["song_id"].astype(str), tracks["tempo_bpm"].astype(float), strict=True))
    if not len(windows):
        log.warning(
            "no CLAP window of %s s fits in acoustic.eval.max_seconds: no CLAP rows", config["clap"]["window_s"]
        )
    embs = {name: clap_embed(clap, audio, windows, sr) if len(windows) else None for name, audio in versions.items()}
    rows = []
    for name, audio in versions.items():
        rows += version_metrics(
            name, audio, original, windows, embs[name], embs[ORIGINAL], anchors, tempo_truth, sr, mel
        )
    for key, value in speed.items():
        rows.append(
            dict(
                version="speed",
                metric=key,
                value=value,
                n=len(original),
                note="seconds of audio per wall second, this CPU",
            )
        )
    quality = pd.DataFrame(rows)
    goals = goal_rows(quality, cfg.space)
    quality = pd.concat([quality, pd.DataFrame(goals)], ignore_index=True)

    out.mkdir(parents=True, exist_ok=True)
    quality.to_csv(out / "quality.csv", index=False)
    example = ec.example_song or next(iter(original))
    if example not in original:
        raise ValueError(f"acoustic.eval.example_song {example!r} is not among the measured songs {sorted(original)}")
    from musicot.audio import write_flac

    (out / "examples").mkdir(exist_ok=True)
    for name, audio in versions.items():
        write_flac(out / "examples" / f"{name}.flac", np.clip(audio[example], -1, 1).T, sr)
    metrics = {
        "space": cfg.space,
        "songs": sorted(original),
        "seconds": durations,
        "example_song": example,
        "windows": len(windows),
        "dit": str(dit_dir),
        "vae": str(vae_dir),
        "quality": rows + goals,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    return metrics


def goal_rows(quality: pd.DataFrame, space: str) -> list[dict]:
    """Whether the default run meets the issue's goals: CLAP cosine and stem AUC vs the originals'."""
    value = {(r.version, r.metric): r.value for r in quality.itertuples()}
    rows = []
    for version, floor in GOALS.items():
        cos = value.get((version, "clap_cosine"), float("nan"))
        rows.append(
            dict(
                version=version,
                metric="goal_clap_cosine",
                value=float(cos >= floor),
                n=1,
                note=f"1 when the CLAP cosine {cos:.3f} >= {floor}",
            )
        )
        auc, ref = value.get((version, "auc_mean"), float("nan")), value.get((ORIGINAL, "auc_mean"), float("nan"))
        rows.append(
            dict(
                version=version,
                metric="goal_auc",
                value=float(abs(auc - ref) <= AUC_GOAL),
                n=1,
                note=f"1 when the mean stem AUC {auc:.3f} is within {AUC_GOAL} of the originals' {ref:.3f}",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    from musicot.config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON (seed, acoustic, clap)")
    parser.add_argument("--tracks", type=Path, required=True)
    parser.add_argument("--vae", type=Path, required=True)
    parser.add_argument("--dit", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    parser.add_argument("--clap-model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = cli_config(args.config, args.threads)
    evaluate(
        cfg,
        load_config(args.config),
        args.tracks,
        args.vae,
        args.dit,
        args.tokens,
        args.clap_model,
        args.out,
    )


if __name__ == "__main__":
    main()
