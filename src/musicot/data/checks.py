"""Decode one audio file in blocks and decide whether it is usable, with a reason when it is not.

`check_audio` returns either a `Scanned` (what a streaming pass over the decoded samples
found: length, rate, content hash) or a `Rejection` whose `reason` is one of `REASONS`.
Samples are read front to back in blocks of `BLOCK_FRAMES`, so checking a file holds one block,
never the whole file; a caller that wants the samples too gets each block (`on_block`).

What libsndfile (1.2, via soundfile 0.14) does with truncated files, and hence how we
detect them:

* WAV/AIFF cut short: libsndfile opens them *without error* and silently shrinks the frame
  count to the bytes present (it only notes "data : N (should be M)" in its log). So we read
  the container ourselves and compare the size the `data`/`SSND` chunk header declares with the
  bytes that are actually in the file.
* FLAC cut short: the STREAMINFO frame count stays the full length and decoding raises
  "flac decoder lost sync" part-way, so any decode error after a successful open is `truncated`.
* MP3 cut short (with a Xing/LAME header): the header promises the full length and `read`
  returns fewer frames, so "decoded < promised" is `truncated`.
* OGG/Opus cut short: the frame count comes from the last page actually present, so a clean
  page-boundary cut is indistinguishable from a shorter file; it passes (or is `too_short`).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicot.audio import SequentialSoundFile
from musicot.data.table import hash_samples

REASONS = (
    "missing",
    "empty_file",
    "unreadable",
    "truncated",
    "nan_or_inf",
    "silent",
    "too_short",
    "too_long",
    "channels",
    "duplicate_id",
    "duplicate_audio",
    "not_audio",
    "bad_row",
    "bad_id",
)
STEREO = 2
# RIFF/AIFF chunk header: 4-byte id + 4-byte size; chunk bodies are padded to even length.
CHUNK_HEADER = 8
# Streaming writers that cannot seek back leave the data size as 0 or all ones: "unknown".
UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# Frames decoded at a time: ~1.5 s at 44.1 kHz, long enough that per-block Python costs vanish
# next to decoding, short enough that a block of even a many-channel file is a few MB.
BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class Rejection:
    """Why an input did not make it: `reason` is a code from REASONS, `detail` a sentence."""

    reason: str
    detail: str


@dataclass(frozen=True)
class BlockStats:
    """What one streaming pass over decoded samples saw; `error` is set when decoding failed part-way."""

    frames: int
    channels: int
    nonfinite: int  # NaN or infinite samples
    sum_squares: float  # over all samples and channels, in float64
    content_sha1: str  # as `sha1_of_samples` on the float32 samples read
    error: str | None = None

    @property
    def rms(self) -> float:
        samples = self.frames * self.channels
        return math.sqrt(self.sum_squares / samples) if samples else 0.0


@dataclass(frozen=True)
class Scanned:
    """A file that passed every check: its length, rate and content hash (the samples are not kept)."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    content_sha1: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def _chunk_layout(head: bytes) -> tuple[str, bytes] | None:
    """(struct byte order, sample chunk id) for RIFF/RIFX/AIFF files, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "<", b"data"
    if head[:4] == b"RIFX" and head[8:12] == b"WAVE":
        return ">", b"data"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return ">", b"SSND"
    return None  # RF64/W64 keep 64-bit sizes elsewhere; other formats have no chunks


def container_shortfall(path: Path) -> int | None:
    """Bytes missing from a WAV/AIFF sample chunk (0 if complete), None if not applicable.

    Walks the top-level chunks up to the sample data chunk and compares the size its header
    declares with what remains of the file.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        layout = _chunk_layout(f.read(12))
        if layout is None:
            return None
        order, data_id = layout
        offset = 12
        while offset + CHUNK_HEADER <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack(order + "4sI", f.read(CHUNK_HEADER))
            body = offset + CHUNK_HEADER
            if chunk_id == data_id:
                if chunk_size in UNKNOWN_SIZES:
                    return 0
                return max(0, body + chunk_size - size)
            offset = body + chunk_size + (chunk_size & 1)
    return None  # no sample chunk found: libsndfile will have its own opinion


def open_audio(path: Path, allow_multichannel: bool) -> SequentialSoundFile | Rejection:
    """The open file, or why it cannot be used; header-level checks only, nothing decoded yet.

    `allow_multichannel` lets >2-channel files through (the caller downmixes them).
    """
    if not path.is_file():
        return Rejection("missing", f"no file at {path}")
    if path.stat().st_size == 0:
        return Rejection("empty_file", "the file is 0 bytes")
    try:
        f = SequentialSoundFile(str(path))
    except Exception as exc:  # libsndfile raises for non-audio data and unknown codecs
        return Rejection("unreadable", f"soundfile cannot open it: {exc}")
    problem = None
    if f.channels < 1:
        problem = Rejection("channels", "the file declares 0 channels")
    elif f.channels > STEREO and not allow_multichannel:
        problem = Rejection("channels", f"{f.channels} channels (only mono/stereo accepted; multichannel=reject)")
    elif shortfall := container_shortfall(path):
        problem = Rejection("truncated", f"the sample chunk header declares {shortfall} bytes more than the file holds")
    if problem is not None:
        f.close()
        return problem
    return f


class SampleTally:
    """Length, level, non-finite count and content hash of the blocks of a signal, fed in order."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.frames = self.nonfinite = 0
        self.sum_squares = 0.0
        self._sha1 = hashlib.sha1()

    def add(self, block: np.ndarray) -> None:
        hash_samples(self._sha1, block)
        finite = np.isfinite(block)
        if finite.all():
            self.sum_squares += float(np.sum(np.square(block, dtype=np.float64)))
        else:  # the signal is rejected for it, so its level no longer matters
            self.nonfinite += int(block.size - np.count_nonzero(finite))
        self.frames += block.shape[0]

    def stats(self, error: str | None = None) -> BlockStats:
        return BlockStats(self.frames, self.channels, self.nonfinite, self.sum_squares, self._sha1.hexdigest(), error)


def scan_blocks(f: SequentialSoundFile, on_block: Callable[[np.ndarray], None] | None = None) -> BlockStats:
    """Decode a freshly opened file to the end its header promises, one block at a time.

    Each (frames, channels) float32 block goes to `on_block` before the next is decoded. We call
    `read` ourselves rather than `SoundFile.blocks`, which hides a short read (it yields the whole
    buffer), and a short read is how a cut MP3 shows itself. Decode errors end the pass and are
    returned in `error`, never raised.
    """
    tally, error = SampleTally(f.channels), None
    while tally.frames < f.frames:
        want = min(BLOCK_FRAMES, f.frames - tally.frames)
        try:
            block = f.read(want, dtype="float32", always_2d=True)
        except Exception as exc:  # any failure after a good open is damaged data
            error = str(exc)
            break
        if block.shape[0]:
            tally.add(block)
            if on_block is not None:
                on_block(block)
        if block.shape[0] < want:
            break
    return tally.stats(error)


def content_problem(stats: BlockStats, sr: int, min_duration_s: float, silence_dbfs: float) -> Rejection | None:
    """Checks on decoded samples, cheapest and most fundamental first."""
    if stats.nonfinite:
        return Rejection("nan_or_inf", f"{stats.nonfinite} samples are NaN or infinite")
    duration = stats.frames / sr
    if duration < min_duration_s:
        return Rejection("too_short", f"{duration:.2f} s is shorter than the {min_duration_s:g} s minimum")
    level_db = 20.0 * math.log10(stats.rms) if stats.rms > 0.0 else -math.inf
    if level_db < silence_dbfs:
        return Rejection("silent", f"RMS {level_db:.1f} dBFS is below the {silence_dbfs:g} dBFS threshold")
    return None


def check_open(
    f: SequentialSoundFile,
    min_duration_s: float,
    silence_dbfs: float,
    on_block: Callable[[np.ndarray], None] | None = None,
) -> Scanned | Rejection:
    """One streaming pass over a freshly opened file and every check on what it decoded."""
    promised = f.frames
    stats = scan_blocks(f, on_block=on_block)
    if stats.error is not None:
        return Rejection("truncated", f"decoding failed part-way: {stats.error}")
    if stats.frames < promised:
        return Rejection("truncated", f"decoded {stats.frames} of the {promised} frames the header promises")
    problem = content_problem(stats, int(f.samplerate), min_duration_s, silence_dbfs)
    if problem is not None:
        return problem
    return Scanned(int(f.samplerate), f.channels, stats.frames, f"{f.format}/{f.subtype}", stats.content_sha1)


def check_audio(
    path: Path, min_duration_s: float, silence_dbfs: float, allow_multichannel: bool
) -> Scanned | Rejection:
    """Open, decode in blocks and validate `path`; never raises for a bad file, only for programming errors."""
    opened = open_audio(path, allow_multichannel)
    if isinstance(opened, Rejection):
        return opened
    with opened as f:
        return check_open(f, min_duration_s, silence_dbfs)
