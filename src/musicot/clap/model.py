"""CLAP presets on laion-clap's `CLAP` class: build, embed, save and load.

Two presets:

* ``tiny`` — laion's PANN ``Cnn6`` audio tower on 16 kHz audio with a 100 ms hop (64 mel
  bins, which Cnn6's first BatchNorm fixes), and laion's CLIP-style ``transformer`` text tower
  shrunk to 2 layers x 128 wide with the BPE tokenizer that ships inside laion-clap (works
  offline). Joint space 128-d. About 12.5 M parameters (half of them the BPE token table);
  ~1.4 s per batch-16 training step on 2 CPU cores.
* ``paper`` — laion's ``HTSAT-base`` audio tower (48 kHz) and ``roberta`` text tower, joint
  space 512-d: the architecture of the public ``music_audioset_epoch_15_esc_90.14.pt``
  checkpoint, which `load_pretrained` reads from a local path, with roberta-base (model and
  tokenizer) read from a local folder. No download is ever attempted.

Models are built by registering our config in laion's model-config registry
(``clap_module.factory._MODEL_CONFIGS``) and calling its ``create_model``; nothing of laion's
model code is copied. A saved model is a folder: ``model.pt`` (state dict) + ``config.json``
(`ClapSpec`), read back by `load`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicot.clap.compat import clap_module

log = logging.getLogger("musicot.clap")

MODEL_FILE = "model.pt"
SPEC_FILE = "config.json"

TINY_CONFIG: dict[str, Any] = {
    "embed_dim": 512,  # Cnn6's embedding width (input of the audio projection)
    "joint_embed_shape": 128,
    "audio_cfg": {
        "audio_length": 1024,
        "clip_samples": 160000,
        "mel_bins": 64,
        "sample_rate": 16000,
        "window_size": 1024,
        "hop_size": 1600,
        "fmin": 30,
        "fmax": 8000,
        "class_num": 5,  # PANN's own tagging head, trained on the anchor stems (see ClapConfig.tag_steps)
        "model_type": "PANN",
        "model_name": "Cnn6",
    },
    "text_cfg": {"context_length": 48, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
}


def _paper_config() -> dict[str, Any]:
    cfg = copy.deepcopy(clap_module().factory._MODEL_CONFIGS["HTSAT-base"])
    cfg["joint_embed_shape"] = 512
    cfg["text_cfg"]["context_length"] = 77
    return cfg


PRESETS = ("tiny", "paper")
TEXT_MODELS = {"tiny": "transformer", "paper": "roberta"}


@dataclass(frozen=True)
class ClapSpec:
    """Everything needed to rebuild a model (written as config.json next to its weights)."""

    preset: str
    model_config: dict = field(default_factory=dict)  # laion model config (embed_dim, audio_cfg, text_cfg, ...)
    text_model: str = "transformer"  # laion tmodel: transformer | roberta
    roberta_dir: str = ""  # local roberta-base folder (model + tokenizer), roberta only

    @property
    def sample_rate(self) -> int:
        return int(self.model_config["audio_cfg"]["sample_rate"])

    @property
    def clip_samples(self) -> int:
        return int(self.model_config["audio_cfg"]["clip_samples"])

    @property
    def context_length(self) -> int:
        return int(self.model_config["text_cfg"]["context_length"])

    @property
    def min_clip_s(self) -> float:
        """Shortest clip the audio tower takes: PANN CNNs halve time in 4 pooling blocks (16 frames)."""
        audio = self.model_config["audio_cfg"]
        return 16 * audio["hop_size"] / audio["sample_rate"] if audio["model_type"] == "PANN" else 0.0


def preset_spec(preset: str, window_s: float = 10.0, roberta_dir: str | Path = "", **overrides: Any) -> ClapSpec:
    """The spec of a preset; `overrides` replace top-level model-config keys (e.g. joint_embed_shape)."""
    if preset == "tiny":
        cfg = copy.deepcopy(TINY_CONFIG)
    elif preset == "paper":
        cfg = _paper_config()
    else:
        raise ValueError(f"unknown CLAP preset {preset!r}; expected one of {PRESETS}")
    cfg.update(copy.deepcopy(overrides))
    audio = cfg["audio_cfg"]
    if preset == "tiny":
        audio["clip_samples"] = round(window_s * audio["sample_rate"])
    elif abs(audio["clip_samples"] - window_s * audio["sample_rate"]) > 1:
        raise ValueError("the paper preset (HTSAT) takes exactly 10 s windows")
    return ClapSpec(preset, cfg, TEXT_MODELS[preset], str(roberta_dir))


@contextlib.contextmanager
def _local_roberta(roberta_dir: str, random_config: Any = None):
    """Make laion's ``RobertaModel.from_pretrained('roberta-base')`` read a local folder (or init randomly)."""
    from transformers import RobertaModel

    module = clap_module().model
    original = module.RobertaModel

    class _Local:
        @staticmethod
        def from_pretrained(name: str, *args, **kwargs):
            if random_config is not None:
                return RobertaModel(random_config)
            if not roberta_dir or not Path(roberta_dir).is_dir():
                raise FileNotFoundError(
                    f"roberta text tower needs a local roberta-base folder (clap.roberta_dir), got {roberta_dir!r}"
                )
            return RobertaModel.from_pretrained(roberta_dir, local_files_only=True)

    module.RobertaModel = _Local
    try:
        yield
    finally:
        module.RobertaModel = original


class ClapModel(nn.Module):
    """laion CLAP plus its tokenizer: `embed_audio` / `embed_text` give L2-normalised joint embeddings."""

    def __init__(self, spec: ClapSpec, roberta_config: Any = None, tokenizer: Any = None):
        super().__init__()
        cm = clap_module()
        self.spec = spec
        name = f"musicot-{spec.preset}"
        cm.factory._MODEL_CONFIGS[name] = copy.deepcopy(spec.model_config)
        with _local_roberta(spec.roberta_dir, roberta_config):
            self.clap, _ = cm.create_model(name, spec.text_model, pretrained="", device=torch.device("cpu"))
        cfg = spec.model_config["audio_cfg"]
        if cfg["model_type"] == "PANN":
            self._scale_spec_augment(cfg)
        # HTSAT and Cnn14 read {"waveform": x}; the smaller PANNs take the tensor itself.
        self._dict_input = cfg["model_type"] == "HTSAT" or cfg["model_name"] == "Cnn14"
        self._tokenizer = tokenizer
        self.audio_regularize = True
        # bias of the anchor sigmoid loss (musicot.clap.train.locked_clip_loss_fn); training only, not saved by `save`
        self.anchor_bias = nn.Parameter(torch.tensor(-5.0))
        if spec.text_model == "roberta" and tokenizer is None:
            from transformers import RobertaTokenizer

            if not spec.roberta_dir:
                raise FileNotFoundError("roberta text tower needs clap.roberta_dir for its tokenizer")
            self._tokenizer = RobertaTokenizer.from_pretrained(spec.roberta_dir, local_files_only=True)

    def _scale_spec_augment(self, cfg: dict) -> None:
        """Keep PANN's SpecAugment time stripes at laion's duration (64 frames of 10 ms = 0.64 s).

        laion's PANNs hard-code ``time_drop_width=64`` frames, written for a 10 ms hop; at the tiny
        preset's 100 ms hop that would blank up to 2 x 6.4 s of a 10 s window (and crash on short
        clips), so the same torchlibrosa augmenter is rebuilt with the width in seconds preserved.
        """
        from torchlibrosa.augmentation import SpecAugmentation

        hop_s = cfg["hop_size"] / cfg["sample_rate"]
        width = max(1, round(64 * 0.01 / hop_s))
        self.clap.audio_branch.spec_augmenter = SpecAugmentation(
            time_drop_width=width, time_stripes_num=2, freq_drop_width=8, freq_stripes_num=2
        )

    def train(self, mode: bool = True) -> ClapModel:
        """nn.Module.train; with ``audio_regularize = False`` the audio tower's own dropout and SpecAugment stay off.

        laion's PANN towers apply SpecAugment and six functional dropouts (p 0.2-0.5) keyed on the
        tower module's own ``training`` flag. Clearing just that flag turns them off while every
        BatchNorm inside keeps training, which a from-scratch model trained for a few hundred steps
        needs: with them on, the tiny preset learns the stems far more slowly.
        """
        super().train(mode)
        if mode and not self.audio_regularize:
            self.clap.audio_branch.training = False
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, texts: Sequence[str]) -> Any:
        """Token tensors as the text tower wants them (ids for transformer, a dict for roberta)."""
        if self.spec.text_model == "transformer":
            return clap_module().tokenize(list(texts), context_length=self.spec.context_length)
        out = self._tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.spec.context_length,
            return_tensors="pt",
        )
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    def _audio(self, wave: torch.Tensor) -> Any:
        wave = wave.to(self.device, torch.float32)
        return {"waveform": wave} if self._dict_input else wave

    def forward(self, wave: torch.Tensor, tokens: Any):
        """laion's six outputs: audio, text, audio_mlp, text_mlp, logit_scale_a, logit_scale_t."""
        return self.clap(self._audio(wave), tokens, device=self.device)

    def tower_outputs(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        """The audio tower's own outputs ("embedding" before the projection, "clipwise_output" tag probabilities)."""
        return self.clap.encode_audio(self._audio(wave), device=self.device)

    def audio_tags(self, wave: torch.Tensor) -> torch.Tensor:
        """The tower's clipwise tag probabilities (batch, class_num), gradients kept."""
        return self.tower_outputs(wave)["clipwise_output"]

    def audio_features(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised audio embeddings of (batch, clip_samples) waveforms (gradients kept)."""
        return F.normalize(self.clap(self._audio(wave), None, device=self.device), dim=-1)

    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """Normalised text embeddings (gradients kept)."""
        return F.normalize(self.clap(None, self.tokenize(texts), device=self.device), dim=-1)

    @torch.no_grad()
    def embed_audio(self, wave: np.ndarray | torch.Tensor, batch_size: int = 16) -> np.ndarray:
        """float32 (n, joint) L2-normalised, in eval mode; `wave` is (n, clip_samples) at spec.sample_rate."""
        was_training = self.training
        self.eval()
        wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        out = [self.audio_features(wave[i : i + batch_size]).cpu() for i in range(0, len(wave), batch_size)]
        self.train(was_training)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.joint_dim), np.float32)

    @torch.no_grad()
    def embed_text(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """float32 (n, joint) L2-normalised, in eval mode."""
        was_training = self.training
        self.eval()
        texts = list(texts)
        out = [self.text_features(texts[i : i + batch_size]).cpu() for i in range(0, len(texts), batch_size)]
        self.train(was_training)
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, self.joint_dim), np.float32)

    @property
    def joint_dim(self) -> int:
        return int(self.spec.model_config.get("joint_embed_shape", 512))


def build(spec: ClapSpec, **kwargs: Any) -> ClapModel:
    """A freshly initialised model of `spec` (kwargs: roberta_config / tokenizer, for tests)."""
    return ClapModel(spec, **kwargs)


def save(model: ClapModel, out_dir: Path | str, extra: dict | None = None) -> Path:
    """Write model.pt (state dict) and config.json (spec + `extra`) into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(model.clap.state_dict(), out_dir / MODEL_FILE)
    (out_dir / SPEC_FILE).write_text(json.dumps({**asdict(model.spec), **(extra or {})}, indent=2, sort_keys=True))
    return out_dir


def load(model_dir: Path | str, **kwargs: Any) -> ClapModel:
    """Rebuild a model written by `save` (eval mode)."""
    model_dir = Path(model_dir)
    raw = json.loads((model_dir / SPEC_FILE).read_text())
    spec = ClapSpec(**{k: raw[k] for k in ("preset", "model_config", "text_model", "roberta_dir")})
    model = ClapModel(spec, **kwargs)
    state = torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    model.clap.load_state_dict(state)
    return model.eval()


def read_laion_checkpoint(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict of a laion-clap release checkpoint (``{"state_dict": {"module.…": …}}`` or a bare one).

    Strips the DataParallel ``module.`` prefix and drops ``text_branch.embeddings.position_ids``
    (a buffer recent transformers no longer registers), as laion's own loader does.
    """
    # laion's release files are plain pickles of tensors (plus epoch/optimizer); weights_only handles them.
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"] if isinstance(ckpt, dict) and "state_dict" in ckpt else ckpt
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    state.pop("text_branch.embeddings.position_ids", None)
    return state


def load_pretrained(checkpoint: Path | str, spec: ClapSpec | None = None, **kwargs: Any) -> ClapModel:
    """A model of `spec` (default: the paper preset) with a laion checkpoint's weights, strictly matched.

    E.g. ``load_pretrained("/models/music_audioset_epoch_15_esc_90.14.pt",
    preset_spec("paper", roberta_dir="/models/roberta-base"))``.
    """
    spec = spec or preset_spec("paper")
    model = ClapModel(spec, **kwargs)
    state = read_laion_checkpoint(checkpoint)
    model.clap.load_state_dict(state, strict=True)
    return model.eval()


def unit_mean(embeddings: np.ndarray) -> np.ndarray:
    """The re-normalised mean of (n, d) unit embeddings: one song's direction from its windows."""
    mean = np.asarray(embeddings).mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


class ClapTagScorer:
    """`musicot.prep.tags.TagScorer` from a CLAP model: cosine of the song's audio and each tag's text.

    The song's embedding is the re-normalised mean of its 10 s window embeddings (hop `hop_s`);
    text embeddings are cached per tag.
    """

    def __init__(self, model: ClapModel, window_s: float = 10.0, hop_s: float = 5.0, max_windows: int = 32):
        self.model, self.window_s, self.hop_s, self.max_windows = model.eval(), window_s, hop_s, max_windows
        self._text: dict[str, np.ndarray] = {}

    def audio_embedding(self, audio: np.ndarray, sr: int) -> np.ndarray:
        from musicot.clap.data import sliding_windows, to_mono

        mono = to_mono(audio, sr, self.model.spec.sample_rate)
        windows = sliding_windows(mono, self.model.spec.sample_rate, self.window_s, self.hop_s)[: self.max_windows]
        return unit_mean(self.model.embed_audio(windows))

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._text]
        if missing:
            self._text.update(zip(missing, self.model.embed_text(missing), strict=True))
        return np.stack([self._text[t] for t in texts]) if texts else np.zeros((0, self.model.joint_dim), np.float32)

    def score(self, audio: np.ndarray, sr: int, tags: list[str]) -> dict[str, float]:
        if not tags:
            return {}
        sims = self.text_embeddings(tags) @ self.audio_embedding(audio, sr)
        return {t: float(s) for t, s in zip(tags, sims, strict=True)}
