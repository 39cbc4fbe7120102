"""Audiobox-Aesthetics scores (CE, CU, PC, PQ) of songs, from a local checkpoint.

    python -m musicot.metrics.aesthetics --checkpoint PATH --out scores.csv FILE...

The model is the `audiobox_aesthetics` package's own `AesMultiOutput` (a WavLM encoder and one head
per axis: Content Enjoyment, Content Usefulness, Production Complexity, Production Quality). The
package's `infer` module (and `utils`, which it imports) loads audio and resamples with torchaudio,
which we never depend on, so the inference procedure of `infer.AesPredictor.forward` is rewritten
here step for step: resample to 16 kHz (soxr), average the channels, cut 10 s windows at a 10 s
hop (the last zero-padded, with a mask of its real samples), run the model, undo each axis' target
normalisation (x * std + mean) and average a song's windows weighted by real length / 10 s.

The checkpoint is a local file in the original format (what `infer` reads: a torch-saved dict
with `state_dict`, `model_cfg` and `target_transform`) or a local folder in `from_pretrained`
layout (config.json + model.safetensors, as facebook/audiobox-aesthetics ships); nothing is
fetched from the Hub. The model is trained on human ratings and cannot be trained here, so
without a checkpoint nothing is scored: the columns say NO_CHECKPOINT and hold no numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pickle
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from audiobox_aesthetics.model.aes import AesMultiOutput

from musicot.audio import read_audio, resample

AXES = ("CE", "CU", "PC", "PQ")
NO_CHECKPOINT = "n/a (no checkpoint)"

# The model's input format, fixed by how it was trained (infer.py's constants), not experiment config.
SAMPLE_RATE = 16_000
WINDOW = 10 * SAMPLE_RATE
HOP = 10 * SAMPLE_RATE

# The model_cfg keys infer.py passes to AesMultiOutput (the others in a training config are not its).
MODEL_CFG_KEYS = (
    "proj_num_layer",
    "proj_ln",
    "proj_act_fn",
    "proj_dropout",
    "nth_layer",
    "use_weighted_layer_sum",
    "precision",
    "normalize_embed",
    "output_dim",
)
FORMATS = (
    "a checkpoint file in the original format (a torch-saved dict with state_dict, model_cfg and "
    "target_transform, e.g. checkpoint.pt) or a folder in from_pretrained layout (config.json + "
    "model.safetensors, as facebook/audiobox-aesthetics ships); Hub ids are not fetched"
)

log = logging.getLogger("musicot.metrics")


def prepare_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    """(samples,) or (channels, samples) float audio at `sr` -> mono float32 at 16 kHz.

    infer.py resamples first and averages the channels after; both are linear, the order is kept anyway.
    """
    x = np.asarray(audio)
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be (samples,) or (channels, samples), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"audio is empty (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"audio must be float samples in [-1, 1], got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError("audio holds NaN or inf samples")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    frames = np.ascontiguousarray(np.atleast_2d(x).T, dtype=np.float32)  # soxr wants (frames, channels)
    mono = resample(frames, sr, SAMPLE_RATE).mean(axis=1)
    if mono.size == 0:
        raise ValueError(f"audio of {x.shape[-1]} samples at {sr} Hz is shorter than one sample at {SAMPLE_RATE} Hz")
    return mono.astype(np.float32, copy=False)


def cut_windows(wav: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """(window, real length) pairs of 16 kHz mono audio, the last window zero-padded (make_inference_batch)."""
    windows = []
    for start in range(0, len(wav), HOP):
        piece = wav[start : start + WINDOW]
        padded = np.zeros(WINDOW, dtype=np.float32)
        padded[: len(piece)] = piece
        windows.append((padded, len(piece)))
    return windows


def _load_original(path: Path) -> AesMultiOutput:
    """The model from infer.py's checkpoint format, built as `AesPredictor.setup_model` builds it."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):
            raise ValueError(f"{path} is not a torch checkpoint ({e}); give {FORMATS}") from e
        # A training checkpoint may pickle config objects besides tensors and plain containers, which
        # weights_only refuses; infer.py loads such a file with full pickle. We do the same only for a
        # readable torch file the user named as the checkpoint, and say so.
        log.warning("%s holds more than tensors and plain containers; loading it with full pickle", path)
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (KeyError, RuntimeError, EOFError) as e:  # what torch.load raises on a file that is no checkpoint
        raise ValueError(f"{path} is not a torch checkpoint ({e!r}); give {FORMATS}") from e
    keys = ("state_dict", "model_cfg", "target_transform")
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in keys):
        found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(
            f"{path} is not an Audiobox-Aesthetics checkpoint (needs keys {keys}, found {found}); give {FORMATS}"
        )
    missing = [k for k in MODEL_CFG_KEYS if k not in ckpt["model_cfg"]]
    if missing:
        raise ValueError(f"{path}: model_cfg lacks {missing}")
    cfg = {k: ckpt["model_cfg"][k] for k in MODEL_CFG_KEYS}
    model = AesMultiOutput(**cfg, target_transform=ckpt["target_transform"])
    # The training module held the network as `self.model`, hence the prefix.
    model.load_state_dict({k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()})
    return model


def _load_folder(path: Path) -> AesMultiOutput:
    """The model from a local from_pretrained folder."""
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} has no {name}; give {FORMATS}")
    # from_pretrained reads an existing folder without the Hub; local_files_only guards any other
    # route. Its default strict=False would leave missing weights random without a word. It prints
    # a line to stdout, which the CLI keeps for its JSON summary.
    with contextlib.redirect_stdout(sys.stderr):
        return AesMultiOutput.from_pretrained(str(path), local_files_only=True, strict=True)


class AestheticsScorer:
    """An AesMultiOutput in evaluation mode and the inference procedure of infer.py around it."""

    def __init__(self, model: AesMultiOutput, device: str | torch.device = "cpu") -> None:
        transform = model.target_transform or {}
        missing = [axis for axis in AXES if axis not in transform]
        if missing:
            raise ValueError(
                f"the model's target_transform lacks axes {missing}: scores cannot be put back on their scale"
            )
        self.device = torch.device(device)
        # Weights stay float32. A model_cfg precision of bf16 is meant to switch on the model's own
        # autocast, but in 0.0.4 it never does (enable_autocast compares the already converted torch
        # dtype with "bf16"), so the model runs in float32 here as under infer.py, on CPU as on GPU.
        self.model = model.float().to(self.device).eval()
        self._mean = np.array([transform[axis]["mean"] for axis in AXES], dtype=np.float64)
        self._std = np.array([transform[axis]["std"] for axis in AXES], dtype=np.float64)

    @classmethod
    def load(cls, checkpoint: str | Path, device: str | torch.device = "cpu") -> AestheticsScorer:
        """Load a local checkpoint: an original-format file or a from_pretrained folder."""
        if str(checkpoint) == "":
            raise ValueError(f"no checkpoint given; give {FORMATS}")
        path = Path(checkpoint)
        if not path.exists():
            raise FileNotFoundError(f"Audiobox-Aesthetics checkpoint {path} does not exist; give {FORMATS}")
        model = _load_folder(path) if path.is_dir() else _load_original(path)
        return cls(model, device)

    def _predict(self, windows: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
        """(n_windows, 4) scores of windows, on the rating scale."""
        wav = torch.from_numpy(np.stack([w for w, _ in windows]))[:, None].to(self.device)
        lengths = torch.tensor([n for _, n in windows])
        mask = (torch.arange(WINDOW)[None] < lengths[:, None])[:, None].to(self.device)
        with torch.inference_mode():
            out = self.model({"wav": wav, "mask": mask})
        raw = torch.stack([out[axis].float() for axis in AXES], dim=1).cpu().numpy().astype(np.float64)
        return raw * self._std + self._mean

    def _score_songs(self, songs: Iterable[np.ndarray], batch_windows: int) -> np.ndarray:
        """(n_songs, 4) length-weighted window means of prepared songs, windows of several songs batched."""
        if batch_windows < 1:
            raise ValueError(f"batch_windows must be at least 1, got {batch_windows}")
        sums: list[np.ndarray] = []
        weights: list[float] = []
        pending: list[tuple[int, np.ndarray, int]] = []

        def flush() -> None:
            preds = self._predict([(w, n) for _, w, n in pending])
            for (song, _, n), pred in zip(pending, preds, strict=True):
                sums[song] += pred * (n / WINDOW)
                weights[song] += n / WINDOW
            pending.clear()

        for song, wav in enumerate(songs):
            sums.append(np.zeros(len(AXES)))
            weights.append(0.0)
            for window, n in cut_windows(wav):
                pending.append((song, window, n))
                if len(pending) == batch_windows:
                    flush()
        if pending:
            flush()
        return np.array(sums).reshape(-1, len(AXES)) / np.array(weights)[:, None]

    def score(self, audio: np.ndarray, sr: int, batch_windows: int = 8) -> dict[str, float]:
        """{axis: score} of one song, (samples,) or (channels, samples) float audio."""
        scores = self._score_songs([prepare_audio(audio, sr)], batch_windows)[0]
        return {axis: float(v) for axis, v in zip(AXES, scores, strict=True)}

    def score_files(self, paths: Sequence[Path], batch_windows: int = 8) -> pd.DataFrame:
        """One row per file: song (the file stem), CE, CU, PC, PQ; files are read one at a time."""
        paths = [Path(p) for p in paths]
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise FileNotFoundError(f"audio files do not exist: {absent}")
        stems = [p.stem for p in paths]
        if len(set(stems)) != len(stems):
            twice = sorted({s for s in stems if stems.count(s) > 1})
            raise ValueError(f"file stems name the songs and must be unique; repeated: {twice}")
        scores = self._score_songs(_read_songs(paths), batch_windows)
        return pd.DataFrame({"song": stems, **{axis: scores[:, k] for k, axis in enumerate(AXES)}})


def _read_songs(paths: Sequence[Path]) -> Iterator[np.ndarray]:
    """Prepared audio of each file, lazily, so a long list never sits in memory at once."""
    for path in paths:
        audio, sr = read_audio(path)
        try:
            yield prepare_audio(audio.T, sr)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


def score_songs(
    checkpoint: str, paths: Sequence[Path], batch_windows: int = 8, device: str = "cpu"
) -> tuple[pd.DataFrame | None, dict]:
    """(per-song table or None, summary): "" as checkpoint scores nothing and says NO_CHECKPOINT."""
    if not checkpoint:
        return None, {"status": NO_CHECKPOINT, **dict.fromkeys(AXES), "n_songs": 0}
    if not paths:
        raise ValueError("no audio files to score")
    table = AestheticsScorer.load(checkpoint, device).score_files(paths, batch_windows)
    means = {axis: float(table[axis].mean()) for axis in AXES}
    return table, {"status": "scored", **means, "n_songs": len(table), "checkpoint": str(Path(checkpoint))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help=f'{FORMATS}; "" scores nothing ({NO_CHECKPOINT})')
    parser.add_argument("--out", type=Path, required=True, help="per-song CSV (written only with a checkpoint)")
    parser.add_argument("--summary", type=Path, help="also write the summary JSON here")
    parser.add_argument("--batch-windows", type=int, default=8, help="10 s windows per forward pass")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    table, summary = score_songs(args.checkpoint, args.files, args.batch_windows, args.device)
    if table is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
