"""Audio -> semantic tokens: features, encoder layer `layer`, nearest k-means centroid; saved as one folder.

    tok = Tokenizer.load("results/semantic/encoder")
    codes = tok.tokens(audio, sr)          # int16 (ceil(seconds / 0.04),), one per 40 ms

Folder layout: the encoder's `save_pretrained` (config.json, model.safetensors), `tokenizer.json`
(feature settings, layer, codebook size, chunk length), `normaliser.safetensors`,
`kmeans.safetensors` (centroids), and the training's `metrics.json` (+ CTC `vocab.json` and
`ctc_head.safetensors` when CTC ran).

Long audio runs through the encoder in chunks of `chunk_s` (attention cost grows with the square of
the length, and the encoder was trained on short crops); a chunk's tokens do not see the next chunk.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Wav2Vec2BertModel

from musicot.semantic.config import FeatureConfig
from musicot.semantic.features import Normaliser, audio_features, file_features

SETTINGS_FILE = "tokenizer.json"
CENTROIDS_FILE = "kmeans.safetensors"
TOKEN_DTYPE = np.int16
CHUNK_BATCH = 16  # chunks per encoder pass


class Tokenizer:
    """A trained encoder, its feature settings and normaliser, one layer and the k-means centroids of that layer."""

    def __init__(
        self,
        encoder: Wav2Vec2BertModel,
        features: FeatureConfig,
        normaliser: Normaliser,
        layer: int,
        centroids: np.ndarray | None,
        chunk_frames: int,
    ) -> None:
        self.encoder = encoder.eval()
        self.features_cfg = features
        self.normaliser = normaliser
        self.layer = layer
        self.centroids = None if centroids is None else torch.as_tensor(centroids, dtype=torch.float32)
        self.chunk = max(1, chunk_frames)

    @property
    def frame_rate(self) -> float:
        """Tokens per second."""
        return 1.0 / self.features_cfg.frame_s

    # ------------------------------------------------------------ saving

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder)
        self.normaliser.save(folder)
        if self.centroids is not None:
            save_file({"centroids": self.centroids.contiguous()}, str(folder / CENTROIDS_FILE))
        settings = {
            "features": asdict(self.features_cfg),
            "layer": self.layer,
            "n_tokens": 0 if self.centroids is None else len(self.centroids),
            "chunk_frames": self.chunk,
            "frame_s": self.features_cfg.frame_s,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> Tokenizer:
        """A tokenizer written by `save` (by `python -m musicot.semantic.train`)."""
        folder = Path(folder)
        settings_path = folder / SETTINGS_FILE
        if not settings_path.exists():
            raise FileNotFoundError(
                f"{folder} is not a semantic tokenizer (no {SETTINGS_FILE}); run python -m musicot.semantic.train"
            )
        settings = json.loads(settings_path.read_text())
        features = FeatureConfig(**settings["features"])
        centroids = None
        if (folder / CENTROIDS_FILE).exists():
            centroids = load_file(str(folder / CENTROIDS_FILE))["centroids"].numpy()
        encoder = Wav2Vec2BertModel.from_pretrained(folder)
        return cls(encoder, features, Normaliser.load(folder), settings["layer"], centroids, settings["chunk_frames"])

    # ------------------------------------------------------------ inference

    def features(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Normalised stacked log-mel rows of any (frames,) / (frames, channels) signal."""
        return self.normaliser(audio_features(audio, sr, self.features_cfg))

    def file_features(self, path: str | Path) -> np.ndarray:
        return self.normaliser(file_features(path, self.features_cfg))

    @torch.no_grad()
    def layer_states(self, features: np.ndarray, layers: list[int] | None = None) -> list[np.ndarray]:
        """(frames, hidden) float32 states of each of `layers` (default: every layer, 0 = input projection)."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        chosen = list(range(self.encoder.config.num_hidden_layers + 1)) if layers is None else list(layers)
        full = len(x) // self.chunk * self.chunk
        # The whole chunks of a song go through the encoder as one batch (a third faster on 2 cores
        # than one by one), CHUNK_BATCH at a time so that a long song's states stay bounded.
        groups = [x[a : min(a + CHUNK_BATCH * self.chunk, full)] for a in range(0, full, CHUNK_BATCH * self.chunk)]
        batches = [g.reshape(-1, self.chunk, x.shape[1]) for g in groups]
        if full < len(x):
            batches.append(x[None, full:])
        parts = [[] for _ in chosen]
        for batch in batches:
            states = self.encoder(batch, output_hidden_states=True).hidden_states
            for part, i in zip(parts, chosen, strict=True):
                part.append(states[i].reshape(-1, states[i].shape[-1]))
        return [torch.cat(part).numpy() for part in parts]

    def assign(self, states: np.ndarray) -> np.ndarray:
        """Nearest-centroid (euclidean, as k-means) token of every row of `states`."""
        if self.centroids is None:
            raise ValueError("this tokenizer has no k-means centroids yet")
        dist = torch.cdist(torch.from_numpy(np.ascontiguousarray(states, np.float32)), self.centroids)
        return dist.argmin(1).numpy().astype(TOKEN_DTYPE)

    def tokens_of_features(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0, TOKEN_DTYPE)
        return self.assign(self.layer_states(features, [self.layer])[0])

    def tokens(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """int16 tokens of a float (frames,) or (frames, channels) signal in [-1, 1] at rate `sr`: one per
        frame_s (40 ms at the defaults), covering all of it."""
        return self.tokens_of_features(self.features(audio, sr))

    def file_tokens(self, path: str | Path) -> np.ndarray:
        return self.tokens_of_features(self.file_features(path))
