"""The `semantic` section of the config as typed dataclasses (meanings and defaults live in the schema)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from musicot.config import ConfigError, build


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel frames stacked into encoder frames; saved with the tokenizer so any audio is featurised alike."""

    sample_rate: int
    n_mels: int
    stack: int
    hop_ms: float
    window_ms: float

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.window_ms / 1000)

    @property
    def dim(self) -> int:
        """Width of one stacked encoder frame."""
        return self.n_mels * self.stack

    @property
    def frame_s(self) -> float:
        """Seconds per encoder frame (= per token): 0.04 s at 10 ms x 4."""
        return self.hop_length * self.stack / self.sample_rate


@dataclass(frozen=True)
class ModelConfig:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    conv_kernel: int
    dropout: float


@dataclass(frozen=True)
class SslConfig:
    steps: int
    batch_size: int
    crop_s: float
    lr: float
    warmup_steps: int
    weight_decay: float
    mask_prob: float
    mask_span: int
    codebook_size: int
    codebook_dim: int
    eval_every: int
    checkpoint_every: int
    log_every: int


@dataclass(frozen=True)
class CtcConfig:
    enabled: bool
    steps: int
    batch_size: int
    lr: float
    warmup_steps: int
    context_s: float
    mask_prob: float
    mask_span: int
    eval_every: int
    checkpoint_every: int
    log_every: int


@dataclass(frozen=True)
class KmeansConfig:
    max_frames: int
    batch_size: int
    max_iter: int
    n_init: int


@dataclass(frozen=True)
class ProbeConfig:
    max_train_frames: int
    active_fraction: float
    level_quantile: float
    c: float
    max_iter: int


@dataclass(frozen=True)
class SemanticConfig:
    """Everything musicot.semantic reads, from a validated top-level config."""

    features: FeatureConfig
    model: ModelConfig
    ssl: SslConfig
    ctc: CtcConfig
    kmeans: KmeansConfig
    probe: ProbeConfig
    layer: int
    n_tokens: int
    chunk_s: float
    threads: int
    seed: int

    @classmethod
    def from_config(cls, config: Mapping) -> SemanticConfig:
        s = config["semantic"]
        features = FeatureConfig(s["sample_rate"], s["n_mels"], s["stack"], s["hop_ms"], s["window_ms"])
        model = build(ModelConfig, s["model"])
        if not 0 <= s["layer"] <= model.layers:
            raise ConfigError(
                f"semantic.layer {s['layer']} is not a layer of the encoder: pick 0 (the input projection) "
                f"to semantic.model.layers ({model.layers})"
            )
        if model.hidden % model.heads:
            raise ConfigError(f"semantic.model.hidden {model.hidden} is not divisible by model.heads {model.heads}")
        if features.win_length < features.hop_length:
            raise ConfigError("semantic.window_ms is shorter than semantic.hop_ms: the STFT would skip samples")
        return cls(
            features=features,
            model=model,
            ssl=build(SslConfig, s["ssl"]),
            ctc=build(CtcConfig, s["ctc"]),
            kmeans=build(KmeansConfig, s["kmeans"]),
            probe=build(ProbeConfig, s["probe"]),
            layer=s["layer"],
            n_tokens=s["n_tokens"],
            chunk_s=s["chunk_s"],
            threads=s["threads"],
            seed=config["seed"],
        )


def cli_config(source: str, threads: int | None) -> SemanticConfig:
    """What every semantic CLI starts with: logging on, the validated config, torch's threads
    (`threads`, else `semantic.threads`; 0 keeps torch's default)."""
    from musicot.config import load_config, start_cli

    cfg = SemanticConfig.from_config(load_config(source))
    start_cli(threads if threads is not None else cfg.threads)
    return cfg
