"""Tiny acoustic-stage configs and models shared by the tests in this folder (CPU, a second each)."""

from __future__ import annotations

import copy

import numpy as np
import torch
import yaml
from diffusers import AutoencoderOobleck, StableAudioDiTModel  # noqa: F401  (diffusers imports lazily: once, here)

from musicot.acoustic.config import AcousticConfig
from musicot.config import validate
from tests.conftest import REPO

TINY_VAE = {"encoder_hidden_size": 4, "decoder_channels": 4, "downsampling_ratios": [2, 2], "channel_multiples": [1, 2]}
TINY_DIT = {
    "num_layers": 1,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "num_key_value_attention_heads": 1,
    "cross_attention_dim": 16,
    "time_proj_dim": 8,
    "token_dim": 8,
}
PAPER_VAE = {
    "encoder_hidden_size": 128,
    "decoder_channels": 128,
    "downsampling_ratios": [2, 4, 4, 8, 8],
    "channel_multiples": [1, 2, 4, 8, 16],
}
PAPER_DIT = {  # Stable Audio Open's DiT
    "num_layers": 24,
    "attention_head_dim": 64,
    "num_attention_heads": 24,
    "num_key_value_attention_heads": 12,
    "cross_attention_dim": 768,
    "time_proj_dim": 256,
    "token_dim": 768,
}

FRAME_DIM, N_TOKENS, CLAP_DIM = 6, 20, 4
FRAME_RATE, TOKEN_RATE = 31.25, 25.0


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def acoustic_config(acoustic: dict | None = None, seed: int = 1) -> AcousticConfig:
    """The validated acoustic config: the tiny VAE and DiT shapes below, `acoustic` merged on top."""
    base = {
        "vae": {
            "model": TINY_VAE,
            "discriminator": {"channels": 4, "n_ffts": [128, 64]},
            "train": {"stft_ffts": [128, 64, 32], "disc_start": 2},
        },
        "dit": {"model": TINY_DIT, "sample": {"steps": 3}},
    }
    return AcousticConfig.from_config(validate({"seed": seed, "acoustic": _merge(base, acoustic or {})}))


def paper_config():
    """The acoustic block of workflow/presets/paper.yaml (validated), else Stable Audio Open's shapes inline."""
    preset = yaml.safe_load((REPO / "workflow/presets/paper.yaml").read_text()) or {}
    if preset.get("acoustic"):
        return AcousticConfig.from_config(validate({"seed": 1, "acoustic": preset["acoustic"]}))
    return acoustic_config(
        {"sample_rate": 44100, "channels": 2, "vae": {"model": PAPER_VAE}, "dit": {"model": PAPER_DIT}}
    )


def tiny_vae(cfg: AcousticConfig | None = None, seed: int = 0):
    from musicot.acoustic.vae import build_vae

    cfg = cfg or acoustic_config()
    torch.manual_seed(seed)
    return build_vae(cfg.vae, cfg.sample_rate, cfg.channels)


def tiny_dit(conditioning: str = "both", seed: int = 0, frame_dim: int = FRAME_DIM):
    from musicot.acoustic.dit import build_dit

    cfg = acoustic_config({"dit": {"conditioning": conditioning}})
    torch.manual_seed(seed)
    return build_dit(
        cfg.dit,
        "mel",
        frame_dim,
        FRAME_RATE,
        TOKEN_RATE,
        N_TOKENS,
        CLAP_DIM,
        np.linspace(-1.0, 1.0, frame_dim),
        np.linspace(0.5, 2.0, frame_dim),
    )


def tiny_batch(model, n_frames: int = 12, seed: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Noisy frames (2, frame_dim, n_frames) and the conditions of two songs: one with CLAP, one without."""
    from musicot.acoustic.sample import conditions, crop_conditions

    rng = np.random.default_rng(seed)
    crops = [crop_conditions(model, rng.integers(0, N_TOKENS, size=n), n_frames) for n in (15, 6)]
    ft, ct = (np.stack(parts) for parts in zip(*crops, strict=True))
    clap = rng.normal(size=(2, CLAP_DIM)).astype(np.float32)
    clap[1] = np.nan
    cond = conditions(model, ft, ct, clap, np.array([12.0, 30.0]))
    x = torch.from_numpy(rng.normal(size=(2, model.spec.frame_dim, n_frames)).astype(np.float32))
    return x, cond


def sine(freq: float, sample_rate: int, n: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sample_rate)).astype(np.float32)
