"""The frame spaces the DiT can model, behind one interface: audio (channels, samples) <-> frames (dim, L).

`VaeCodec` is the paper's: the VAE-GAN's posterior means. `MelCodec` is a fixed invertible log-mel space
(librosa's mel filterbank, Griffin-Lim inversion) for runs whose VAE-GAN does not yet carry the music
(acoustic.space); it has no weights, so nothing about it is trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from musicot.acoustic.config import AcousticConfig, MelConfig

LOG_FLOOR = 1e-5  # power floor of the log-mel: -115 dB, below anything the corpus holds


class Codec(Protocol):
    name: str
    sample_rate: int
    channels: int
    dim: int
    hop: int

    def encode(self, audio: np.ndarray) -> np.ndarray: ...

    def decode(self, frames: np.ndarray) -> np.ndarray: ...

    def decode_batch(self, frames: np.ndarray) -> np.ndarray: ...


class VaeCodec:
    """Frames are the VAE-GAN's posterior means (as stable-audio-tools pre-encodes); decode is its decoder."""

    name = "vae"

    def __init__(self, vae):
        self.vae = vae.eval()
        self.sample_rate = int(vae.config.sampling_rate)
        self.channels = int(vae.config.audio_channels)
        self.dim = int(vae.config.decoder_input_channels)
        self.hop = int(np.prod(vae.config.downsampling_ratios))

    @torch.no_grad()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        pad = (-x.shape[-1]) % self.hop
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
        return self.vae.encode(x).latent_dist.mode()[0].numpy()

    def decode(self, frames: np.ndarray) -> np.ndarray:
        return self.decode_batch(np.asarray(frames)[None])[0]

    @torch.no_grad()
    def decode_batch(self, frames: np.ndarray) -> np.ndarray:
        """(B, dim, L) frames -> (B, channels, samples) audio."""
        z = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
        return self.vae.decode(z).sample.numpy()


class MelCodec:
    """Frames are log-power mel spectra; decode inverts them with Griffin-Lim (channels are coded one by one)."""

    name = "mel"

    def __init__(self, cfg: MelConfig, sample_rate: int, channels: int):
        self.cfg, self.sample_rate, self.channels = cfg, sample_rate, channels
        self.dim = cfg.n_mels * channels
        self.hop = cfg.hop

    def encode(self, audio: np.ndarray) -> np.ndarray:
        import librosa

        c = self.cfg
        mel = librosa.feature.melspectrogram(
            y=np.asarray(audio, dtype=np.float32),
            sr=self.sample_rate,
            n_fft=c.n_fft,
            hop_length=c.hop,
            n_mels=c.n_mels,
            power=2.0,
            center=True,
        )  # (channels, n_mels, frames + 1)
        frames = np.log(np.maximum(mel, LOG_FLOOR))[..., : -1 or None]
        if c.round_to > 0:
            frames = np.round(frames / c.round_to) * c.round_to
        return frames.reshape(self.dim, -1).astype(np.float32)

    def decode(self, frames: np.ndarray) -> np.ndarray:
        return self.decode_batch(np.asarray(frames)[None])[0]

    def decode_batch(self, frames: np.ndarray) -> np.ndarray:
        """(B, dim, L) frames -> (B, channels, samples): one Griffin-Lim over the whole batch (numpy's
        per-call overhead is paid once; a song decoded alone gets the same random phases as in a batch of one)."""
        import librosa

        c = self.cfg
        frames = np.asarray(frames, dtype=np.float32)
        b = len(frames)
        power = np.exp(frames).reshape(b * self.channels, c.n_mels, -1)
        n = power.shape[-1]
        # encode dropped the centred STFT's extra last frame (L frames per L hops); repeat it back
        power = np.concatenate([power, power[..., -1:]], axis=-1)
        # The filterbank's pseudo-inverse, not librosa's mel_to_stft: its non-negative least squares
        # took ~2 s per second of audio here, the pseudo-inverse ~1 ms, and Griffin-Lim hears no difference.
        stft_power = np.maximum(self._inverse() @ power, 0.0)
        audio = librosa.griffinlim(
            np.sqrt(stft_power),
            n_iter=c.griffin_lim_iters,
            hop_length=c.hop,
            n_fft=c.n_fft,
            length=n * c.hop,
            random_state=0,
        )
        return np.asarray(audio, dtype=np.float32).reshape(b, self.channels, -1)

    def _inverse(self) -> np.ndarray:
        if getattr(self, "_pinv", None) is None:
            import librosa

            basis = librosa.filters.mel(sr=self.sample_rate, n_fft=self.cfg.n_fft, n_mels=self.cfg.n_mels)
            self._pinv = np.linalg.pinv(basis).astype(np.float32)
        return self._pinv


def load_codec(cfg: AcousticConfig, vae_dir: str | Path | None) -> Codec:
    """The codec `cfg.space` names; `vae_dir` is the trained (or pretrained) VAE folder, needed for `vae`."""
    if cfg.space == "mel":
        return MelCodec(cfg.mel, cfg.sample_rate, cfg.channels)
    from musicot.acoustic.vae import load_vae

    if vae_dir is None:
        raise ValueError("acoustic.space 'vae' needs the VAE folder")
    return VaeCodec(load_vae(vae_dir))
