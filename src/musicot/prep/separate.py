"""Source separation into the six stems (vocals, bass, drums, guitar, piano, other) with Demucs.

One module, used twice in the project: the vocal stem feeds lyrics/VAD here, and later the
six stems of generated songs feed the analyzability metric. Three verbs:

    python -m musicot.prep.separate train --config CFG --tracks results/corpus/tracks.parquet \
        --out results/prep/separator --state results/prep/state/separator --threads 2
    python -m musicot.prep.separate apply --config CFG --model results/prep/separator \
        --tracks ... --out results/prep/stems --rejected results/prep/separation_rejected.tsv --threads 2
    python -m musicot.prep.separate score --config CFG --stems results/prep/stems --tracks ... \
        --quality results/prep/separation_quality.csv --per-song results/prep/separation_sdr.csv

The paper uses the public six-stem HTDemucs (htdemucs_6s). With `prep.separation.checkpoint`
set to a local folder holding its weights, that model is loaded offline; otherwise a tiny
HTDemucs is trained on the corpus stems (`separate_train`). Either way the model lives in
demucs' own on-disk format and is loaded by `demucs.pretrained.get_model(name, repo=folder)`,
so the trained model and the public one take the same code path.

Songs that cannot be separated become rejection rows (step "separation"), never a crash.
Training lives in `separate_train`, scoring (plain SDR against the corpus truth stems of the
valid split) in `separate_score`; this module holds the model I/O, separation and the CLI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import time
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from demucs.apply import apply_model
from demucs.htdemucs import HTDemucs
from demucs.pretrained import REMOTE_ROOT, get_model
from demucs.repo import AnyModelRepo, BagOnlyRepo, LocalRepo, ModelLoadingError
from demucs.states import get_state
from tqdm import tqdm

from musicot import distributed
from musicot.audio import read_audio, resample, to_stereo, write_flac
from musicot.config import ConfigError, build, load_config
from musicot.data.table import STEMS
from musicot.prep.common import load_tracks, write_quality, write_rejected

log = logging.getLogger("musicot.prep.separate")

STEP = "separation"
TRAINED_NAME = "musicot_htdemucs"  # no '-': demucs' LocalRepo reads "<sig>-<checksum>.th"
CONFIG_FILE = "config.json"  # beside the trained .th: the SeparationConfig and the model name
METRICS_FILE = "metrics.json"
MANIFEST_FILE = "separation.json"  # in the stems folder: which model, which stems, how fast
MIN_CHANNELS = 8  # HTDemucs' DConv branches compress channels by 8: fewer gives empty layers
MIN_DURATION_S = 1.0  # shorter mixes are rejected as too short to separate meaningfully


@dataclass(frozen=True)
class SeparationConfig:
    """prep.separation of the validated config (see the schema for each key's meaning)."""

    checkpoint: str | None
    model: str
    sample_rate: int
    channels: int
    depth: int
    t_layers: int
    segment_s: float
    steps: int
    batch_size: int
    crop_s: float
    lr: float
    lr_schedule: str
    remix_prob: float
    gain_range: tuple[float, float]
    flip_sign: bool
    flip_channels: bool
    mono_prob: float
    loss: str
    nfft: int
    eval_every: int
    overlap: float
    shifts: int

    @classmethod
    def from_config(cls, config: Mapping) -> SeparationConfig:
        """From a validated top-level config."""
        cfg = build(cls, config["prep"]["separation"])
        if cfg.gain_range[0] > cfg.gain_range[1]:
            raise ConfigError(
                f"prep.separation.gain_range must be [min, max] with min <= max, got {list(cfg.gain_range)}"
            )
        return cfg


# --------------------------------------------------------------------------- model I/O


def build_model(cfg: SeparationConfig) -> HTDemucs:
    """A small HTDemucs over the six project stems.

    use_train_segment=False: by default HTDemucs overwrites its `segment` with the length of
    every training batch, so training on crop_s crops would silently change the segment that
    apply_model later splits songs into (and the saved model would disagree with the one in
    memory). Without it the model takes any input length and `segment` stays segment_s.
    """
    if cfg.channels < MIN_CHANNELS:
        raise ConfigError(f"prep.separation.channels must be >= {MIN_CHANNELS} for HTDemucs, got {cfg.channels}")
    return HTDemucs(
        sources=list(STEMS),
        audio_channels=2,
        samplerate=cfg.sample_rate,
        segment=cfg.segment_s,
        channels=cfg.channels,
        depth=cfg.depth,
        t_layers=cfg.t_layers,
        nfft=cfg.nfft,
        use_train_segment=False,
    )


def serialize(model: torch.nn.Module, training_args: Mapping) -> dict:
    """demucs' checkpoint package (what demucs.states.serialize_model builds), in full precision.

    serialize_model itself needs omegaconf (a demucs training dependency we do not install)
    and stores half precision; the reloaded model must give the same outputs as this one.
    """
    args, kwargs = model._init_args_kwargs
    return {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": get_state(model, None, half=False),
        "training_args": dict(training_args),
    }


def save_separator(model: torch.nn.Module, cfg: SeparationConfig, out_dir: Path, name: str = TRAINED_NAME) -> Path:
    """Write `out_dir/<name>.th` (demucs format) and `out_dir/config.json`; returns the .th path."""
    if "-" in name:
        raise ValueError(f"model name {name!r} must not contain '-' (demucs reads it as <sig>-<checksum>)")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.th"
    tmp = out_dir / f"{name}.th.tmp"  # not *.th, so LocalRepo never sees a half-written file
    torch.save(serialize(model, asdict(cfg)), tmp)
    os.replace(tmp, path)
    meta = {"name": name, "description": f"trained tiny HTDemucs, {cfg.steps} steps", "config": asdict(cfg)}
    (out_dir / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return path


def load_separator(source: SeparationConfig | str | Path, name: str | None = None) -> torch.nn.Module:
    """A separator from a local folder, in eval mode; never touches the network.

    `source` is either a SeparationConfig (its `checkpoint` folder and `model` name: the public
    model) or a folder. A folder written by `save_separator` names its model in config.json;
    for any other folder `name` is required.
    """
    if isinstance(source, SeparationConfig):
        if source.checkpoint is None:
            raise ValueError("prep.separation.checkpoint is null: pass the trained separator folder instead")
        folder, name = Path(source.checkpoint), source.model
    else:
        folder = Path(source)
        name = name or trained_name(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"separator folder {folder} does not exist")
    if name is None:
        raise ValueError(f"{folder} has no {CONFIG_FILE}: give the model name")
    model = _get_local_model(name, folder)
    model.eval()
    return model


def trained_name(folder: Path) -> str | None:
    """The model name recorded by `save_separator`, None for other folders."""
    meta = Path(folder) / CONFIG_FILE
    return json.loads(meta.read_text())["name"] if meta.exists() else None


def _get_local_model(name: str, folder: Path) -> torch.nn.Module:
    """get_model(name, repo=folder), plus the bag definitions shipped inside demucs.

    With a local repo demucs only looks for bag YAMLs in that folder, so a folder holding just
    the public weights (e.g. 5c90dfd2-34c22ccb.th) cannot be loaded as "htdemucs_6s". In that
    case the bag YAML comes from the demucs package and the weights from the folder.
    """
    models = LocalRepo(folder)
    if models.has_model(name) or (folder / f"{name}.yaml").exists():
        return get_model(name, repo=folder)
    if (REMOTE_ROOT / f"{name}.yaml").exists():
        log.info("bag %s: definition from the demucs package, weights from %s", name, folder)
        return AnyModelRepo(models, BagOnlyRepo(REMOTE_ROOT, models)).get_model(name)
    found = sorted(models.list_model())
    raise ModelLoadingError(f"{name!r} is neither a model nor a bag in {folder} (models there: {found})")


def describe(folder: Path, name: str) -> str:
    """One line naming the separator, for quality notes."""
    meta = folder / CONFIG_FILE
    if meta.exists():
        return json.loads(meta.read_text()).get("description", name)
    return f"{name} from {folder}"


# --------------------------------------------------------------------------- applying


class SongError(Exception):
    """A song that cannot be separated; `reason` becomes the rejection reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def separate_mix(model: torch.nn.Module, mix: np.ndarray, sr: int, shifts: int, overlap: float) -> np.ndarray:
    """Stems (sources, frames, channels) at model.samplerate of a (frames, channels) mix at `sr`."""
    if not np.isfinite(mix).all():
        raise SongError("non_finite", "mix holds NaN or inf samples")
    if mix.shape[0] < MIN_DURATION_S * sr:
        raise SongError("too_short", f"{mix.shape[0] / sr:.2f} s < {MIN_DURATION_S} s")
    x = resample(to_stereo(mix) if model.audio_channels == 2 else mix, sr, model.samplerate)
    wav = torch.from_numpy(np.ascontiguousarray(x.T, dtype=np.float32))
    # Normalise as demucs' own separate/api do (public models are used that way); undone below.
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std()
    std = std if std > 0 else torch.ones(())
    with torch.no_grad():
        # on the job's GPU when it has one (demucs moves the model and each chunk; the song stays on the CPU)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        batch = ((wav - mean) / std)[None]
        out = apply_model(model, batch, shifts=shifts, overlap=overlap, split=True, device=device)[0].cpu()
    out = out * std + mean
    if not torch.isfinite(out).all():
        raise SongError("non_finite", "separator output holds NaN or inf")
    return out.permute(0, 2, 1).numpy()


def separate_songs(
    model: torch.nn.Module,
    tracks: pd.DataFrame,
    out_dir: Path,
    cfg: SeparationConfig,
    threads: int | None = None,
    description: str = "",
) -> list[dict]:
    """Write `out_dir/<song_id>/<stem>.flac` (16-bit, model.samplerate) for every song's mix.

    Returns rejection rows (song_id, step, reason, detail) for the songs that failed. Stems the
    model does not produce are not written; `out_dir/separation.json` lists them as missing.
    """
    if threads:
        torch.set_num_threads(threads)
    model.eval()
    have = [s for s in STEMS if s in model.sources]
    missing = [s for s in STEMS if s not in model.sources]
    if missing:
        log.warning("separator has sources %s: stems %s are not produced", list(model.sources), missing)
    rejected, audio_s, t0 = [], 0.0, time.perf_counter()
    for song in tqdm(tracks.itertuples(), total=len(tracks), desc="separate", leave=False):
        # Shifts draw random offsets: seed per song so a song's stems do not depend on the order.
        random.seed(zlib.crc32(song.song_id.encode()))
        try:
            try:
                mix, sr = read_audio(song.audio_path)
            except Exception as exc:  # soundfile raises several types for missing/corrupt files
                raise SongError("unreadable", f"{song.audio_path}: {exc}") from exc
            stems = separate_mix(model, mix, sr, cfg.shifts, cfg.overlap)
        except SongError as exc:
            rejected.append({"song_id": song.song_id, "step": STEP, "reason": exc.reason, "detail": exc.detail})
            continue
        except Exception as exc:  # an unexpected failure is still one song, not the whole run
            rejected.append({"song_id": song.song_id, "step": STEP, "reason": "error", "detail": repr(exc)})
            continue
        audio_s += mix.shape[0] / sr
        for stem in have:
            # Clip: libsndfile wraps (not clips) floats beyond +-1 when writing 16-bit PCM.
            audio = np.clip(stems[model.sources.index(stem)], -1.0, 1.0)
            write_flac(out_dir / song.song_id / f"{stem}.flac", audio, model.samplerate)
    wall = time.perf_counter() - t0
    manifest = {
        "model": description,
        "samplerate": int(model.samplerate),
        "stems": have,
        "missing_stems": missing,
        "songs": len(tracks) - len(rejected),
        "rejected": len(rejected),
        "audio_s": audio_s,
        "wall_s": wall,
        "wall_s_per_audio_min": wall / (audio_s / 60) if audio_s else None,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    log.info("separated %d songs (%.0f s of audio) in %.1f s", manifest["songs"], audio_s, wall)
    return rejected


def read_at(path: Path, sr: int) -> np.ndarray:
    """A file as stereo (frames, 2) float32 resampled to `sr`."""
    audio, file_sr = read_audio(path)
    return resample(to_stereo(audio), file_sr, sr)


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m musicot.prep.separate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb in ("train", "apply", "score"):
        sub = verbs.add_parser(verb)
        sub.add_argument("--config", required=True, help="config YAML path or inline JSON")
        sub.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
        sub.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    train, apply, score = (verbs.choices[v] for v in ("train", "apply", "score"))
    train.add_argument("--out", type=Path, required=True, help="folder for <name>.th, config.json, metrics.json")
    train.add_argument("--state", type=Path, required=True, help="folder for the resumable training state")
    apply.add_argument("--model", type=Path, default=None, help="separator folder (default: the configured checkpoint)")
    apply.add_argument("--name", default=None, help="model/bag name in --model (default: config.json or the config)")
    apply.add_argument("--out", type=Path, required=True, help="folder for <song_id>/<stem>.flac")
    apply.add_argument("--rejected", type=Path, required=True, help="rejection TSV to write")
    score.add_argument("--stems", type=Path, required=True, help="folder written by apply")
    score.add_argument("--quality", type=Path, required=True, help="quality CSV to write")
    score.add_argument("--per-song", type=Path, required=True, help="per-song SDR CSV to write")
    return parser


def _apply(args: argparse.Namespace, cfg: SeparationConfig) -> None:
    folder = args.model or (Path(cfg.checkpoint) if cfg.checkpoint else None)
    if folder is None:
        raise SystemExit("no --model given and prep.separation.checkpoint is null")
    name = args.name or trained_name(folder) or cfg.model
    model = load_separator(folder, name)
    rejected = separate_songs(model, load_tracks(args.tracks), args.out, cfg, args.threads, describe(folder, name))
    write_rejected(rejected, args.rejected)


def _score(args: argparse.Namespace) -> None:
    from musicot.prep.separate_score import score_separation

    manifest = args.stems / MANIFEST_FILE
    model = json.loads(manifest.read_text()).get("model", "") if manifest.exists() else ""
    quality, per_song = score_separation(args.stems, load_tracks(args.tracks), model)
    write_quality(quality, args.quality)
    args.per_song.parent.mkdir(parents=True, exist_ok=True)
    per_song.to_csv(args.per_song, index=False)
    for q in quality:
        log.info("%s = %.2f dB (n=%d)", q["metric"], q["value"], q["n"])


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=distributed.log_level(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    cfg = SeparationConfig.from_config(config)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.verb == "train":
        from musicot.prep.separate_train import train_separator  # training code only when training

        train_separator(load_tracks(args.tracks), cfg, args.out, args.state, args.threads, seed=config["seed"])
    elif args.verb == "apply":
        _apply(args, cfg)
    else:
        _score(args)


if __name__ == "__main__":
    main()
