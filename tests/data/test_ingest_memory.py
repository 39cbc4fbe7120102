"""Ingest holds memory bounded by max_duration_s, whatever a recording's length.

The ingest CLI runs in a subprocess (through a tiny wrapper, so that the peak we read is that
of this one run and not of some earlier child of pytest) on a ten-minute WAV, split into parts
of `PART_S`. Its peak RSS, less that of the same command on a two-second file (interpreter,
libraries, tables), must fit in a few copies of one part, and stay far below what decoding the
whole file alone would take.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from musicot.data.sources import derive_song_id

SR = 44100
CHANNELS = 2
LONG_S = 600.0
PART_S = 30.0
BASELINE_S = 2.0
FLOAT32_BYTES = 4
# At its peak a worker holds the part (float32 stereo at the corpus rate), pyloudnorm's float64
# copy and its own copy of that, and one filtered channel: ~6 float32 parts. 8 leaves headroom.
PART_COPIES = 8
KIB = 1024
# Prints the peak RSS (bytes) of the command given after it, its only child.
PEAK_RSS = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "kib = 1 if sys.platform == 'darwin' else 1024; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib)"
)


def write_tone(path: Path, seconds: float, block_s: float = 10.0) -> None:
    """A sine plus a little noise, written block by block so the test never holds the file."""
    rng = np.random.default_rng(0)
    total, block = round(seconds * SR), round(block_s * SR)
    with sf.SoundFile(path, "w", SR, CHANNELS, subtype="PCM_16") as f:
        for start in range(0, total, block):
            t = (start + np.arange(min(block, total - start))) / SR
            noise = 0.02 * rng.standard_normal((t.size, CHANNELS))
            f.write((0.2 * np.sin(2 * np.pi * 220.0 * t)[:, None] + noise).astype(np.float32))


def peak_rss_of_ingest(src: Path, out: Path) -> int:
    """Peak RSS in bytes of `python -m musicot.data.ingest` over the folder `src`."""
    config = {
        "corpus": {"source": "folder", "ingest": {"path": str(src), "min_duration_s": 1.0, "max_duration_s": PART_S}}
    }
    cli = [sys.executable, "-m", "musicot.data.ingest", "--config", json.dumps(config), "--out", str(out)]
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, *cli], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("memory")
    (root / "small").mkdir()
    (root / "long").mkdir()
    write_tone(root / "small" / "small.wav", BASELINE_S)
    write_tone(root / "long" / "long.wav", LONG_S)
    baseline = peak_rss_of_ingest(root / "small", root / "out-small")
    peak = peak_rss_of_ingest(root / "long", root / "out-long")
    return {"baseline": baseline, "peak": peak, "part": root / "out-long"}


def test_long_file_stays_under_the_memory_bound(measured: dict) -> None:
    part_bytes = PART_S * SR * CHANNELS * FLOAT32_BYTES
    whole_bytes = LONG_S * SR * CHANNELS * FLOAT32_BYTES  # the old code held this, and ~5 more of it
    extra = measured["peak"] - measured["baseline"]
    mib = f"peak {measured['peak'] / KIB**2:.0f} MiB, baseline {measured['baseline'] / KIB**2:.0f} MiB"
    assert extra < PART_COPIES * part_bytes, mib
    assert extra < whole_bytes / 2, mib


def test_long_file_becomes_equal_parts(measured: dict) -> None:
    tracks = pd.read_parquet(measured["part"] / "tracks.parquet")
    count = round(LONG_S / PART_S)
    assert list(tracks["song_id"]) == [f"{derive_song_id('long.wav')}-p{k:02d}" for k in range(count)]
    assert tracks["source_path"].nunique() == 1
    np.testing.assert_allclose(tracks["duration_s"], PART_S)
    for k, row in tracks.iterrows():
        assert sf.info(row["audio_path"]).frames == round(PART_S * SR)
        assert f"part {k + 1} of {count}: {k * PART_S:.2f}-{(k + 1) * PART_S:.2f} s" in row["notes"]
