"""Music referencing: the musical thought of any audio file, to give the sampler instead of sampling one.

The file goes through the same CLAP windows and RVQ as the corpus songs (`musicot.analysis.song_thought`),
and its M = ceil(duration / window) thought frames are picked exactly as the LM's training songs' are
(`musicot.lm.data.thought_rows`), so a reference of any length yields a thought of the shape the LM
learned. Pass the result as `Prompt.thought` (`musicot.lm.sample`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from musicot.lm.data import thought_rows


def thought_of_windows(table: pd.DataFrame, window_s: float, duration_s: float) -> np.ndarray:
    """(M, L) codes from a song's window table (start, code_<level>) for a song of `duration_s` seconds.

    The duration comes from the file, not from the windows: the last window ends before the song
    does when the tail is shorter than a hop, and that tail still counts as a frame."""
    table = table.sort_values("start")
    levels = sorted(int(c.removeprefix("code_")) for c in table.columns if c.startswith("code_"))
    if not levels or not len(table):
        raise ValueError("the window table holds no codes")
    rows = thought_rows(table["start"].to_numpy(), duration_s, window_s)
    return table.iloc[rows][[f"code_{level}" for level in levels]].to_numpy(dtype=np.int64)


def reference_thought(audio_path: Path, clap_dir: Path, rvq_dir: Path) -> np.ndarray:
    """The (M, L) thought of the audio file at `audio_path` under the given CLAP model and RVQ."""
    from musicot.analysis.song_thought import clap_windowing, song_thought
    from musicot.clap.model import SPEC_FILE

    audio = json.loads((Path(clap_dir) / SPEC_FILE).read_text())["model_config"]["audio_cfg"]
    window_s, _ = clap_windowing(clap_dir, audio["clip_samples"] / audio["sample_rate"])
    duration_s = sf.info(str(audio_path)).duration
    return thought_of_windows(song_thought(Path(audio_path), Path(clap_dir), Path(rvq_dir)), window_s, duration_s)
