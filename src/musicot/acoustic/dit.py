"""The latent DiT: diffusers' StableAudioDiTModel plus the conditioner that turns semantic tokens, a CLAP
vector and a duration into its inputs, trained with the v-objective on the cosine schedule.

Time convention: t in [0, 1], alpha = cos(pi t / 2), sigma = sin(pi t / 2), x_t = alpha x0 + sigma eps,
target v = alpha eps - sigma x0. This is the parameterisation diffusers' CosineDPMSolverMultistepScheduler
samples (its timesteps are atan(sigma_edm) * 2 / pi = t, and it rescales inputs by 1 / sqrt(sigma^2 + 1)
= alpha), so the model trained here is sampled by Stable Audio Open's own scheduler unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from musicot.acoustic.config import DitConfig, DitModelConfig

TRANSFORMER_DIR = "transformer"  # StableAudioDiTModel.save_pretrained
CONDITIONER_FILE = "conditioner.safetensors"
SPEC_FILE = "dit.json"


@dataclass(frozen=True)
class DitSpec:
    """What a saved DiT needs besides its weights: the frame space, token rate and normalisation."""

    space: str  # "vae" | "mel": the codec whose frames the DiT models
    frame_dim: int
    frame_rate: float  # frames per second
    token_rate: float  # semantic tokens per second
    n_tokens: int
    clap_dim: int
    conditioning: str
    max_duration_s: float
    model: dict  # DitModelConfig as a dict
    frame_mean: list[float]  # per-channel statistics of the train songs' frames (the DiT sees them normalised)
    frame_std: list[float]


def rotary(model_cfg: dict, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotary embedding StableAudioPipeline builds: half the head dim, over the frames + the global token."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    return get_1d_rotary_pos_embed(
        model_cfg["attention_head_dim"] // 2, length + 1, use_real=True, repeat_interleave_real=False
    )


def token_index(n_frames: int, frame_rate: float, token_rate: float, start_frame: int = 0) -> np.ndarray:
    """For each frame, the index of the semantic token sounding at its start time (floor), from `start_frame`."""
    times = (np.arange(n_frames) + start_frame) / frame_rate
    return np.floor(times * token_rate + 1e-6).astype(np.int64)


class AcousticDiT(nn.Module):
    """StableAudioDiTModel conditioned on semantic tokens (concatenated and/or cross-attended), CLAP and duration."""

    def __init__(self, spec: DitSpec):
        super().__init__()
        from diffusers import StableAudioDiTModel

        self.spec = spec
        m = DitModelConfig(**spec.model)
        self.concat = spec.conditioning in ("concat", "both")
        self.cross = spec.conditioning in ("cross", "both")
        self.null_token = spec.n_tokens  # the dropped-condition id
        self.token_embed = nn.Embedding(spec.n_tokens + 1, m.token_dim)
        # concat-only still feeds the cross-attention a sequence: one learned token (attending to a constant)
        self.empty_cross = nn.Parameter(torch.zeros(1, 1, m.token_dim))
        self.transformer = StableAudioDiTModel(
            sample_size=1024,
            in_channels=spec.frame_dim + (m.token_dim if self.concat else 0),
            out_channels=spec.frame_dim,
            num_layers=m.num_layers,
            attention_head_dim=m.attention_head_dim,
            num_attention_heads=m.num_attention_heads,
            num_key_value_attention_heads=m.num_key_value_attention_heads,
            cross_attention_dim=m.cross_attention_dim,
            time_proj_dim=m.time_proj_dim,
            global_states_input_dim=spec.clap_dim + 2,
            cross_attention_input_dim=m.token_dim,
        )

    def global_states(self, clap: torch.Tensor, clap_present: torch.Tensor, duration_s: torch.Tensor) -> torch.Tensor:
        """(B, 1, clap_dim + 2): the CLAP vector (zero when absent), a presence flag and the scaled duration."""
        present = clap_present.float()[:, None]
        dur = (duration_s.float() / self.spec.max_duration_s)[:, None]
        return torch.cat([clap * present, present, dur], dim=1)[:, None, :]

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        frame_tokens: torch.Tensor,
        cross_tokens: torch.Tensor,
        global_states: torch.Tensor,
    ) -> torch.Tensor:
        """v prediction (B, frame_dim, L) for noisy frames `x` (B, frame_dim, L) at times `t` (B,).

        `frame_tokens` (B, L): the token id under each frame; `cross_tokens` (B, S): the token sequence the
        cross-attention reads (both use `null_token` where dropped)."""
        if self.concat:
            x = torch.cat([x, self.token_embed(frame_tokens).transpose(1, 2)], dim=1)
        cross = self.token_embed(cross_tokens) if self.cross else self.empty_cross.expand(x.shape[0], 1, -1)
        return self.transformer(
            x,
            t,
            encoder_hidden_states=cross,
            global_hidden_states=global_states,
            rotary_embedding=rotary(self.spec.model, x.shape[-1]),
            return_dict=False,
        )[0]


def build_dit(
    cfg: DitConfig,
    space: str,
    frame_dim: int,
    frame_rate: float,
    token_rate: float,
    n_tokens: int,
    clap_dim: int,
    frame_mean: np.ndarray,
    frame_std: np.ndarray,
) -> AcousticDiT:
    spec = DitSpec(
        space=space,
        frame_dim=frame_dim,
        frame_rate=frame_rate,
        token_rate=token_rate,
        n_tokens=n_tokens,
        clap_dim=clap_dim,
        conditioning=cfg.conditioning,
        max_duration_s=cfg.max_duration_s,
        model=asdict(cfg.model),
        frame_mean=[float(v) for v in frame_mean],
        frame_std=[float(v) for v in frame_std],
    )
    return AcousticDiT(spec)


def v_objective(model: AcousticDiT, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, cond: dict) -> torch.Tensor:
    """Mean squared error of the v prediction at times `t` (B,) for clean normalised frames `x0`."""
    alpha = torch.cos(t * math.pi / 2)[:, None, None]
    sigma = torch.sin(t * math.pi / 2)[:, None, None]
    x_t = alpha * x0 + sigma * noise
    target = alpha * noise - sigma * x0
    return torch.mean((model(x_t, t, **cond) - target) ** 2)


def save_dit(model: AcousticDiT, folder: Path, extra: dict | None = None) -> None:
    """The transformer in diffusers' own format (loads with StableAudioDiTModel.from_pretrained), the
    conditioner's weights and the spec."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.transformer.save_pretrained(str(folder / TRANSFORMER_DIR))
    save_file(
        {"token_embed": model.token_embed.weight.detach().contiguous(), "empty_cross": model.empty_cross.detach()},
        str(folder / CONDITIONER_FILE),
    )
    (folder / SPEC_FILE).write_text(json.dumps({**asdict(model.spec), **(extra or {})}, indent=2))


def load_dit(folder: Path) -> AcousticDiT:
    """A DiT written by `save_dit`, in eval mode."""
    from diffusers import StableAudioDiTModel

    folder = Path(folder)
    if not (folder / SPEC_FILE).exists():
        raise FileNotFoundError(
            f"{folder} holds no acoustic DiT ({SPEC_FILE} missing); train it with musicot.acoustic.train_dit"
        )
    raw = json.loads((folder / SPEC_FILE).read_text())
    spec = DitSpec(**{k: raw[k] for k in DitSpec.__dataclass_fields__})
    model = AcousticDiT(spec)
    model.transformer = StableAudioDiTModel.from_pretrained(str(folder / TRANSFORMER_DIR), local_files_only=True)
    weights = load_file(str(folder / CONDITIONER_FILE))
    model.token_embed.weight.data.copy_(weights["token_embed"])
    model.empty_cross.data.copy_(weights["empty_cross"])
    return model.eval()
