"""Decode one audio file and decide whether it is usable, with a reason when it is not.

`check_audio` returns either a `Decoded` (the samples exactly as decoded, before any
normalisation) or a `Rejection` whose `reason` is one of `REASONS`.

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

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from musicot.audio import rms
from musicot.data.table import sha1_of_samples

REASONS = (
    "missing",
    "empty_file",
    "unreadable",
    "truncated",
    "nan_or_inf",
    "silent",
    "too_short",
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


@dataclass(frozen=True)
class Rejection:
    """Why an input did not make it: `reason` is a code from REASONS, `detail` a sentence."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Decoded:
    """Samples as decoded, (frames, channels) float32, plus what the hash/normaliser need."""

    audio: np.ndarray
    sample_rate: int
    format: str
    content_sha1: str

    @property
    def channels(self) -> int:
        return int(self.audio.shape[1])

    @property
    def duration_s(self) -> float:
        return self.audio.shape[0] / self.sample_rate


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


def _decode(path: Path, allow_multichannel: bool) -> tuple[np.ndarray, int, str] | Rejection:
    """Open and fully decode, telling 'cannot open' (unreadable) from 'fails part-way'.

    Header-level checks run before decoding so that a bad file costs no decode time.
    """
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:  # libsndfile raises for non-audio data and unknown codecs
        return Rejection("unreadable", f"soundfile cannot open it: {exc}")
    with f:
        if f.channels < 1:
            return Rejection("channels", "the file declares 0 channels")
        if f.channels > STEREO and not allow_multichannel:
            return Rejection("channels", f"{f.channels} channels (only mono/stereo accepted; multichannel=reject)")
        shortfall = container_shortfall(path)
        if shortfall:
            return Rejection(
                "truncated", f"the sample chunk header declares {shortfall} bytes more than the file holds"
            )
        promised = f.frames
        try:
            audio = f.read(dtype="float32", always_2d=True)
        except Exception as exc:  # any failure after a good open is damaged data
            return Rejection("truncated", f"decoding failed part-way: {exc}")
        if audio.shape[0] < promised:
            return Rejection("truncated", f"decoded {audio.shape[0]} of the {promised} frames the header promises")
        return audio, int(f.samplerate), f"{f.format}/{f.subtype}"


def _content_problem(audio: np.ndarray, sr: int, min_duration_s: float, silence_dbfs: float) -> Rejection | None:
    """Checks on decoded samples, cheapest and most fundamental first."""
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        return Rejection("nan_or_inf", f"{bad} samples are NaN or infinite")
    duration = audio.shape[0] / sr
    if duration < min_duration_s:
        return Rejection("too_short", f"{duration:.2f} s is shorter than the {min_duration_s:g} s minimum")
    level = rms(audio)
    level_db = 20.0 * math.log10(level) if level > 0.0 else -math.inf
    if level_db < silence_dbfs:
        return Rejection("silent", f"RMS {level_db:.1f} dBFS is below the {silence_dbfs:g} dBFS threshold")
    return None


def check_audio(
    path: Path, min_duration_s: float, silence_dbfs: float, allow_multichannel: bool
) -> Decoded | Rejection:
    """Decode `path` and validate it; never raises for a bad file, only for programming errors.

    `allow_multichannel` lets >2-channel files through (the caller downmixes them).
    """
    if not path.is_file():
        return Rejection("missing", f"no file at {path}")
    if path.stat().st_size == 0:
        return Rejection("empty_file", "the file is 0 bytes")
    decoded = _decode(path, allow_multichannel)
    if isinstance(decoded, Rejection):
        return decoded
    audio, sr, fmt = decoded
    problem = _content_problem(audio, sr, min_duration_s, silence_dbfs)
    if problem is not None:
        return problem
    return Decoded(audio=audio, sample_rate=sr, format=fmt, content_sha1=sha1_of_samples(audio))
