"""Semantic tokens (+ duration, + optional CLAP vector) -> acoustic frames -> waveform.

`render` is the one entry point the generation stage and `musicot render` use. Frames are sampled with
diffusers' CosineDPMSolverMultistepScheduler (Stable Audio Open's SDE DPM-Solver++); its Brownian noise
and the initial noise both come from the render's seed, so a render is a pure function of its inputs.
Classifier-free guidance runs the conditional and the unconditional (all conditions dropped) rows in one
batch; at scale 1 the unconditional row is never run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicot.acoustic.config import AcousticConfig, DitSampleConfig
from musicot.acoustic.dit import AcousticDiT, load_dit, token_index


def crop_conditions(
    model: AcousticDiT, tokens: np.ndarray, n_frames: int, start_frame: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(frame_tokens (n_frames,), cross_tokens (S,)) of a song's tokens for frames [start, start + n_frames);
    positions past the song's last token get the null id."""
    spec = model.spec
    null = model.null_token
    idx = token_index(n_frames, spec.frame_rate, spec.token_rate, start_frame)
    padded = np.concatenate([np.asarray(tokens, dtype=np.int64), [null]])
    frame_tokens = padded[np.minimum(idx, len(tokens))]
    first = int(np.floor(start_frame / spec.frame_rate * spec.token_rate + 1e-6))
    span = int(np.ceil(n_frames / spec.frame_rate * spec.token_rate - 1e-6)) + 1
    cross = padded[np.minimum(np.arange(first, first + span), len(tokens))]
    return frame_tokens, cross


def conditions(
    model: AcousticDiT,
    frame_tokens: np.ndarray,
    cross_tokens: np.ndarray,
    clap: np.ndarray | None,
    duration_s: np.ndarray,
) -> dict[str, torch.Tensor]:
    """Batched model inputs; `clap` (B, D) with NaN rows (or None) for absent vectors."""
    b = len(frame_tokens)
    if clap is None:
        clap = np.full((b, model.spec.clap_dim), np.nan, np.float32)
    present = ~np.isnan(clap).any(axis=1)
    clap_t = torch.from_numpy(np.nan_to_num(clap, nan=0.0).astype(np.float32))
    return {
        "frame_tokens": torch.as_tensor(np.asarray(frame_tokens), dtype=torch.long),
        "cross_tokens": torch.as_tensor(np.asarray(cross_tokens), dtype=torch.long),
        "global_states": model.global_states(
            clap_t, torch.from_numpy(present), torch.as_tensor(np.asarray(duration_s), dtype=torch.float32)
        ),
    }


def unconditional(model: AcousticDiT, cond: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same batch with every condition dropped (as training drops them): null tokens, no CLAP."""
    dur = cond["global_states"][:, 0, -1:] * model.spec.max_duration_s
    b = len(dur)
    return {
        "frame_tokens": torch.full_like(cond["frame_tokens"], model.null_token),
        "cross_tokens": torch.full_like(cond["cross_tokens"], model.null_token),
        "global_states": model.global_states(
            torch.zeros(b, model.spec.clap_dim), torch.zeros(b, dtype=torch.bool), dur[:, 0]
        ),
    }


def scheduler(cfg: DitSampleConfig):
    from diffusers import CosineDPMSolverMultistepScheduler

    return CosineDPMSolverMultistepScheduler(
        sigma_min=cfg.sigma_min,
        sigma_max=cfg.sigma_max,
        sigma_data=1.0,
        sigma_schedule=cfg.sigma_schedule,
        solver_type=cfg.solver_type,
        prediction_type="v_prediction",
    )


def guided(model: AcousticDiT, x: torch.Tensor, t: torch.Tensor, cond: dict, uncond: dict | None, scale: float):
    """v = v_u + scale (v_c - v_u); one batched forward over [cond | uncond]."""
    tt = t.reshape(1).expand(x.shape[0]).float()
    if uncond is None or scale == 1.0:
        return model(x, tt, **cond)
    both = {k: torch.cat([cond[k], uncond[k]]) for k in cond}
    v = model(torch.cat([x, x]), torch.cat([tt, tt]), **both)
    v_c, v_u = v.chunk(2)
    return v_u + scale * (v_c - v_u)


@torch.no_grad()
def sample_frames(model: AcousticDiT, cond: dict, n_frames: int, cfg: DitSampleConfig, seed: int) -> torch.Tensor:
    """Normalised frames (B, frame_dim, n_frames) for the batch `cond`, seeded by `seed`."""
    generator = torch.Generator().manual_seed(seed)
    sched = scheduler(cfg)
    sched.set_timesteps(cfg.steps)
    b = cond["frame_tokens"].shape[0]
    x = torch.randn(b, model.spec.frame_dim, n_frames, generator=generator) * sched.init_noise_sigma
    uncond = unconditional(model, cond) if cfg.cfg_scale != 1.0 else None
    for t in sched.timesteps:
        v = guided(model, sched.scale_model_input(x, t), t, cond, uncond, cfg.cfg_scale)
        x = sched.step(v, t, x, generator=generator).prev_sample
    return x


def denormalise(model: AcousticDiT, frames: torch.Tensor) -> np.ndarray:
    mean = torch.tensor(model.spec.frame_mean)[None, :, None]
    std = torch.tensor(model.spec.frame_std)[None, :, None]
    return (frames * std + mean).numpy()


@dataclass
class Renderer:
    """A loaded DiT and the codec that decodes its frames."""

    model: AcousticDiT
    codec: object
    sample: DitSampleConfig

    @classmethod
    def load(cls, cfg: AcousticConfig, dit_dir: Path, vae_dir: Path | None) -> Renderer:
        from musicot.acoustic.codec import load_codec

        model = load_dit(dit_dir)
        if model.spec.space != cfg.space:
            raise ValueError(f"{dit_dir} models '{model.spec.space}' frames but acoustic.space is '{cfg.space}'")
        return cls(model, load_codec(cfg, vae_dir), cfg.dit.sample)

    def frames(self, tokens: np.ndarray, duration_s: float, clap: np.ndarray | None, seed: int) -> np.ndarray:
        """Denormalised frames (frame_dim, L) for one song's tokens."""
        return self.frames_batch([tokens], duration_s, None if clap is None else clap[None], seed)[0]

    def frames_batch(
        self, tokens: Sequence[np.ndarray], duration_s: float, clap: np.ndarray | None, seed: int
    ) -> np.ndarray:
        """Denormalised frames (B, frame_dim, L) for songs of one duration sampled together; `clap` (B, D) or
        None. The noise is drawn for the batch from `seed`, so a song's audio depends on its batch: callers keep
        batches fixed (the same prompts in the same order for every system)."""
        # whole frames covering the duration (decode cuts the audio back to it): never a song a hop short
        n = max(1, math.ceil(duration_s * self.model.spec.frame_rate - 1e-9))
        crops = [crop_conditions(self.model, t, n) for t in tokens]
        durations = np.full(len(crops), duration_s)
        cond = conditions(self.model, np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops]), clap, durations)
        return denormalise(self.model, sample_frames(self.model, cond, n, self.sample, seed))

    def render(
        self, tokens: np.ndarray, duration_s: float, clap: np.ndarray | None = None, seed: int = 0
    ) -> np.ndarray:
        """(channels, samples) float32 audio at the codec's rate, `duration_s` long."""
        return self.decode(self.frames(tokens, duration_s, clap, seed), duration_s)

    def decode(self, frames: np.ndarray, duration_s: float) -> np.ndarray:
        return self.decode_batch(np.asarray(frames)[None], duration_s)[0]

    def decode_batch(self, frames: np.ndarray, duration_s: float) -> np.ndarray:
        """(B, frame_dim, L) frames -> (B, channels, samples) audio, `duration_s` long."""
        return self.codec.decode_batch(frames)[..., : round(duration_s * self.codec.sample_rate)]


def timed_render(
    renderer: Renderer, tokens: np.ndarray, duration_s: float, clap=None, seed: int = 0
) -> tuple[np.ndarray, float, float]:
    """The audio and the wall seconds of the DiT and of the decoder, separately."""
    t0 = time.perf_counter()
    frames = renderer.frames(tokens, duration_s, clap, seed)
    t1 = time.perf_counter()
    audio = renderer.decode(frames, duration_s)
    return audio, t1 - t0, time.perf_counter() - t1
