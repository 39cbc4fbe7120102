"""Stacked log-mel frames: the encoder's input, one row per token (40 ms at the defaults).

Mono mix, soxr resampling to `sample_rate`, a power mel spectrogram every `hop_ms` (torch STFT with
librosa's mel filters), natural log above a floor, then `stack` consecutive frames side by side
(frame-major: row t holds mel frames t*stack .. t*stack+stack-1). A signal of N samples gives
ceil(N / (hop * stack)) rows, so the tokens of a song cover all of it; the last row repeats the
final mel frame where the signal runs out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from safetensors.numpy import load_file, save_file

from musicot.audio import resample
from musicot.semantic.config import FeatureConfig

# Power floor before the log: 1e-10 is -100 dB below a full-scale sine, under any 16-bit signal's
# noise floor, so digital silence does not set the scale of the normalised features.
LOG_FLOOR = 1e-10
# Per-feature standard deviations below this (a constant mel band) are not scaled up into noise.
MIN_STD = 1e-3
NORMALISER_FILE = "normaliser.safetensors"


def to_mono(audio: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> float32 (frames,) channel mean."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise ValueError(f"audio must be (frames,) or (frames, channels), got shape {a.shape}")
    return np.ascontiguousarray(a)


def read_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A file as float32 mono at `sample_rate`."""
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise ValueError(f"cannot read audio file {path}: {error}") from None
    return resample(to_mono(audio), sr, sample_rate)


@lru_cache(maxsize=4)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    return torch.from_numpy(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)).float()


def n_frames(n_samples: int, cfg: FeatureConfig) -> int:
    """Encoder frames (tokens) of a signal of `n_samples` at cfg.sample_rate."""
    return math.ceil(n_samples / (cfg.hop_length * cfg.stack))


def log_mel(mono: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_mel_frames, n_mels) float32 natural-log power mel spectrogram of a mono signal at cfg.sample_rate."""
    x = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))
    if len(x) < cfg.win_length:  # a centred STFT needs at least one window of signal
        x = torch.nn.functional.pad(x, (0, cfg.win_length - len(x)))
    spec = torch.stft(
        x,
        n_fft=cfg.win_length,
        hop_length=cfg.hop_length,
        window=torch.hann_window(cfg.win_length),
        center=True,
        return_complex=True,
    )
    power = spec.abs().square()
    mel = _mel_filters(cfg.sample_rate, cfg.win_length, cfg.n_mels) @ power
    return torch.log(mel.clamp_min(LOG_FLOOR)).T.contiguous().numpy()


def stacked_features(mono: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """(n_frames(len(mono)), n_mels * stack) float32 stacked log-mel rows of a mono signal at cfg.sample_rate."""
    rows = n_frames(len(mono), cfg)
    mel = log_mel(mono, cfg)
    need = rows * cfg.stack
    if len(mel) < need:
        mel = np.concatenate([mel, np.repeat(mel[-1:], need - len(mel), axis=0)])
    return np.ascontiguousarray(mel[:need].reshape(rows, cfg.dim))


def audio_features(audio: np.ndarray, sr: int, cfg: FeatureConfig) -> np.ndarray:
    """Stacked log-mel rows of any (frames,) / (frames, channels) signal at rate `sr`."""
    return stacked_features(resample(to_mono(audio), sr, cfg.sample_rate), cfg)


def file_features(path: str | Path, cfg: FeatureConfig) -> np.ndarray:
    """Stacked log-mel rows of an audio file."""
    return stacked_features(read_mono(path, cfg.sample_rate), cfg)


class Normaliser:
    """Per-feature mean and standard deviation of the train split's stacked frames (BEST-RQ's input norm)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.maximum(np.asarray(std, dtype=np.float32), MIN_STD)

    @classmethod
    def fit(cls, features: Iterable[np.ndarray]) -> Normaliser:
        """From (frames, dim) arrays, accumulated in float64 so long corpora do not lose precision."""
        n, total, squares = 0, None, None
        for f in features:
            f64 = f.astype(np.float64)
            total = f64.sum(0) if total is None else total + f64.sum(0)
            squares = (f64**2).sum(0) if squares is None else squares + (f64**2).sum(0)
            n += len(f)
        if not n:
            raise ValueError("cannot fit a feature normaliser on no frames")
        mean = total / n
        return cls(mean, np.sqrt(np.maximum(squares / n - mean**2, 0.0)))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std).astype(np.float32, copy=False)

    def save(self, folder: Path) -> None:
        save_file({"mean": self.mean, "std": self.std}, str(Path(folder) / NORMALISER_FILE))

    @classmethod
    def load(cls, folder: Path) -> Normaliser:
        tensors = load_file(str(Path(folder) / NORMALISER_FILE))
        return cls(tensors["mean"], tensors["std"])
