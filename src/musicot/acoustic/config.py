"""The `acoustic` section of the config as typed dataclasses (meanings and defaults live in the schema)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from musicot.config import ConfigError, build


@dataclass(frozen=True)
class VaeModelConfig:
    """diffusers AutoencoderOobleck's constructor arguments."""

    encoder_hidden_size: int
    decoder_channels: int
    downsampling_ratios: tuple[int, ...]
    channel_multiples: tuple[int, ...]

    @property
    def latent_dim(self) -> int:
        """Latent channels: diffusers' Oobleck encoder outputs encoder_hidden_size channels, half mean, half scale."""
        return self.encoder_hidden_size // 2

    @property
    def hop(self) -> int:
        """Audio samples per latent frame."""
        out = 1
        for ratio in self.downsampling_ratios:
            out *= ratio
        return out


@dataclass(frozen=True)
class DiscriminatorConfig:
    channels: int
    n_ffts: tuple[int, ...]


@dataclass(frozen=True)
class VaeTrainConfig:
    steps: int
    batch_size: int
    segment_s: float
    lr: float
    disc_lr: float
    betas: tuple[float, float]
    disc_start: int
    stft_weight: float
    kl_weight: float
    adv_weight: float
    fm_weight: float
    stft_ffts: tuple[int, ...]
    eval_every: int
    checkpoint_every: int
    log_every: int


@dataclass(frozen=True)
class VaeConfig:
    pretrained: str
    model: VaeModelConfig
    discriminator: DiscriminatorConfig
    train: VaeTrainConfig


@dataclass(frozen=True)
class MelConfig:
    n_mels: int
    n_fft: int
    hop: int
    griffin_lim_iters: int
    round_to: float


@dataclass(frozen=True)
class DitModelConfig:
    num_layers: int
    attention_head_dim: int
    num_attention_heads: int
    num_key_value_attention_heads: int
    cross_attention_dim: int
    time_proj_dim: int
    token_dim: int


@dataclass(frozen=True)
class DitTrainConfig:
    steps: int
    batch_size: int
    segment_s: float
    lr: float
    warmup_steps: int
    weight_decay: float
    cond_dropout: float
    clap_dropout: float
    eval_every: int
    checkpoint_every: int
    log_every: int
    grad_accum: int = 1
    bf16: bool = True
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class DitSampleConfig:
    steps: int
    cfg_scale: float
    sigma_min: float
    sigma_max: float
    sigma_schedule: str
    solver_type: str


@dataclass(frozen=True)
class DitConfig:
    conditioning: str
    max_duration_s: float
    model: DitModelConfig
    train: DitTrainConfig
    sample: DitSampleConfig

    @property
    def concat(self) -> bool:
        return self.conditioning in ("concat", "both")

    @property
    def cross(self) -> bool:
        return self.conditioning in ("cross", "both")


@dataclass(frozen=True)
class EvalConfig:
    max_songs: int
    max_seconds: float
    example_song: str


@dataclass(frozen=True)
class AcousticConfig:
    seed: int
    sample_rate: int
    channels: int
    space: str
    threads: int
    vae: VaeConfig
    mel: MelConfig
    dit: DitConfig
    eval: EvalConfig

    @classmethod
    def from_config(cls, config: Mapping) -> AcousticConfig:
        """From a validated config (needs `seed` and `acoustic`)."""
        values = dict(config["acoustic"])
        cfg = build(cls, {"seed": config["seed"], **values})
        if cfg.vae.model.encoder_hidden_size % 2:
            raise ConfigError("acoustic.vae.model.encoder_hidden_size must be even (half mean, half scale)")
        if len(cfg.vae.model.channel_multiples) != len(cfg.vae.model.downsampling_ratios):
            raise ConfigError("acoustic.vae.model: channel_multiples needs one entry per downsampling ratio")
        if cfg.dit.model.num_attention_heads % cfg.dit.model.num_key_value_attention_heads:
            raise ConfigError("acoustic.dit.model: num_key_value_attention_heads must divide num_attention_heads")
        return cfg


def cli_config(source: str, threads: int | None) -> AcousticConfig:
    """What every acoustic CLI starts with: logging on, the validated config, torch's threads
    (`threads`, else `acoustic.threads`; 0 keeps torch's default)."""
    from musicot.config import load_config, start_cli

    cfg = AcousticConfig.from_config(load_config(source))
    start_cli(threads if threads is not None else cfg.threads)
    return cfg
