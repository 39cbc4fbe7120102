"""A small synthetic LM data folder (what `musicot.lm.data` writes), for LM tests without the corpus.

Each song's audio tokens are drawn from a few tokens its thought's first code selects, so the
thought carries information about the audio that an LM can learn within a few dozen steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.lm.text import train_tokenizer
from musicot.lm.vocab import Vocab

LEVELS, CODES, N_SEMANTIC, CLAP_DIM = 2, 8, 32, 16
WORDS = ["love", "night", "fire", "rain", "heart", "road", "light", "dream", "dance", "river"]


def make_lm_data(root: Path, n_songs: int = 12, seed: int = 0, audio: int = 60) -> dict[str, Path]:
    """Write tokenizer/, data/ (songs.parquet, vocab.json), windows.npy and tokens/ under `root`."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lyrics = [" ".join(rng.choice(WORDS, 6)) for _ in range(n_songs)]
    tokenizer = train_tokenizer([*lyrics, "genre: rock", "genre: jazz", "mood: calm"], 200, 1)
    tokenizer.save_pretrained(root / "tokenizer")
    (root / "tokens").mkdir(exist_ok=True)
    rows, clap = [], []
    for i in range(n_songs):
        frames = int(rng.integers(2, 4))
        thought = rng.integers(0, CODES, (frames, LEVELS))
        palette = (thought[0, 0] * 4 + np.arange(4)) % N_SEMANTIC
        tokens = rng.choice(palette, audio).astype(np.int16)
        np.save(root / "tokens" / f"s{i:02d}.npy", tokens)
        rows_here = list(range(len(clap), len(clap) + frames))
        clap += [rng.normal(size=CLAP_DIM) for _ in range(frames)]
        genre = "rock" if thought[0, 0] % 2 else "jazz"
        rows.append(
            dict(
                song_id=f"s{i:02d}",
                split="train" if i < n_songs - 4 else ("valid" if i < n_songs - 2 else "reference"),
                duration_s=frames * 10.0,
                tags_text=f"genre: {genre}",
                lyrics_text=lyrics[i],
                tag_ids=tokenizer(f"genre: {genre}", add_special_tokens=False)["input_ids"],
                lyric_ids=tokenizer(lyrics[i], add_special_tokens=False)["input_ids"],
                n_frames=frames,
                thought=thought.reshape(-1).tolist(),
                clap_rows=rows_here,
                tokens=str(root / "tokens" / f"s{i:02d}.npy"),
            )
        )
    (root / "data").mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(root / "data" / "songs.parquet", index=False)
    vocab = Vocab(len(tokenizer), LEVELS, CODES, N_SEMANTIC)
    (root / "data" / "vocab.json").write_text(json.dumps(vocab.to_json()))
    emb = np.asarray(clap, dtype=np.float32)
    np.save(root / "windows.npy", emb / np.linalg.norm(emb, axis=1, keepdims=True))
    return {"tokenizer": root / "tokenizer", "data": root / "data", "embeddings": root / "windows.npy"}


def lm_config(seed: int = 3, steps: int = 40, **train) -> dict:
    """A tiny LM config (validated by the caller) whose sequences fit the synthetic songs."""
    return {
        "seed": seed,
        "semantic": {},
        "lm": {
            "model": {"hidden": 32, "layers": 2, "heads": 2, "kv_heads": 1, "intermediate": 64, "max_positions": 256},
            "max_audio_s": 2.0,
            "train": {
                "steps": steps,
                "batch_size": 4,
                "lr": 0.01,
                "warmup": 2,
                "eval_every": 10,
                "checkpoint_every": 10,
                "log_every": 5,
                "threads": 1,
                **train,
            },
            "eval": {"shuffles": 2, "bootstrap": 200},
        },
    }
