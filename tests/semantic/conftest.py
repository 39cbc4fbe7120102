"""A toy corpus written in a blink (no rendering): a few seconds of tones and noise per song, with truth tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.config import validate

SR = 22050  # not the encoder's rate: every read resamples, as with the real corpus
SONG_S = 4.0
LINES = ["la la sun", "moon and sea", "sun sea la"]


def toy_song(rng: np.random.Generator, seconds: float = SONG_S) -> np.ndarray:
    """Stereo: a tone that changes pitch every 0.5 s plus noise bursts, so masked frames are predictable."""
    t = np.arange(int(seconds * SR)) / SR
    pitch = rng.choice([220.0, 330.0, 440.0, 660.0], size=int(np.ceil(seconds / 0.5)))[(t // 0.5).astype(int)]
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / SR)
    bursts = (rng.random(len(pitch)) < 0.5)[(t // 0.5).astype(int)] * rng.normal(0, 0.1, len(t))
    mono = (tone + bursts).astype(np.float32)
    return np.stack([mono, 0.8 * mono], axis=1)


def write_toy_corpus(folder: Path, n_train: int = 3, n_valid: int = 1, timed: bool = True, seed: int = 0) -> Path:
    """tracks.parquet + audio + lyric_lines/lyric_words/stem_volume; returns the tracks path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tracks, lines, words, volume = [], [], [], []
    for i in range(n_train + n_valid):
        song = f"toy{i:02d}"
        path = folder / "audio" / song / "mix.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, toy_song(rng), SR, subtype="PCM_16")
        split = "train" if i < n_train else "valid"
        text = LINES[i % len(LINES)]
        tracks.append(
            {
                "song_id": song,
                "split": split,
                "audio_path": str(path),
                "stems_dir": "",
                "duration_s": SONG_S,
                "content_sha1": f"sha{i}",
                "lyrics": text,
                "lyrics_timed": timed,
            }
        )
        if timed:
            lines.append({"song_id": song, "line": 0, "text": text, "start": 0.5, "end": 3.0})
            for k, word in enumerate(text.split()):
                words.append(
                    {"song_id": song, "line": 0, "word_index": k, "word": word, "start": 0.5 + k, "end": 1.2 + k}
                )
        for stem in ("vocals", "bass", "drums", "guitar", "piano"):
            for f in range(int(SONG_S / 0.5)):
                rms = float(rng.random() < 0.5) * 0.05
                volume.append(
                    {"song_id": song, "stem": stem, "frame": f, "start": f * 0.5, "end": f * 0.5 + 0.5, "rms": rms}
                )
    pd.DataFrame(tracks).to_parquet(folder / "tracks.parquet")
    columns = ["song_id", "line", "text", "start", "end"]
    pd.DataFrame(lines, columns=columns).to_parquet(folder / "lyric_lines.parquet")
    pd.DataFrame(words, columns=["song_id", "line", "word_index", "word", "start", "end"]).to_parquet(
        folder / "lyric_words.parquet"
    )
    pd.DataFrame(volume).to_parquet(folder / "stem_volume.parquet")
    return folder / "tracks.parquet"


def toy_semantic(**overrides) -> dict:
    """A `semantic` section small enough to train in a second or two."""
    section = {
        "n_mels": 16,
        "stack": 4,
        "layer": 1,
        "n_tokens": 8,
        "chunk_s": 2.0,
        "threads": 1,
        "model": {"hidden": 16, "layers": 2, "heads": 2, "intermediate": 32, "conv_kernel": 3},
        "ssl": {"steps": 6, "batch_size": 2, "crop_s": 1.0, "codebook_size": 16, "codebook_dim": 4, "warmup_steps": 2},
        "ctc": {"enabled": True, "steps": 4, "batch_size": 2, "warmup_steps": 1},
        "kmeans": {"max_frames": 200, "batch_size": 64, "max_iter": 5},
        "probe": {"max_train_frames": 200, "max_iter": 200},
    }
    for key, value in overrides.items():
        section[key] = {**section[key], **value} if isinstance(value, dict) else value
    return section


def toy_config_json(seed: int = 7, **overrides) -> str:
    return json.dumps({"seed": seed, "semantic": toy_semantic(**overrides)})


@pytest.fixture(scope="module")
def toy_tracks(tmp_path_factory) -> Path:
    return write_toy_corpus(tmp_path_factory.mktemp("toy_corpus"))


@pytest.fixture
def toy_cfg():
    from musicot.semantic.config import SemanticConfig

    def make(**overrides):
        return SemanticConfig.from_config(validate({"seed": 7, "semantic": toy_semantic(**overrides)}))

    return make
