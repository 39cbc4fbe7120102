"""Audio I/O and level helpers shared by every stage (soundfile, soxr, pyloudnorm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

PCM16_MAX = 32767


class SequentialSoundFile(sf.SoundFile):
    """A SoundFile for reading front to back in blocks; always pass `read` a frame count.

    soundfile's `read` seeks (SEEK_SET) to where it thinks each read ended, and libsndfile's MP3
    decoder does not always land on that exact sample: an MP3 read in blocks then gives other
    samples than the same file read whole (soundfile 0.14, libsndfile 1.2.2: errors of 0.2 from
    the second block of a plain sine on). Saying the file cannot seek makes `read` skip that
    seek; the reads themselves are libsndfile's, unchanged.
    """

    def seekable(self) -> bool:
        return False


def resolve_corpus_path(path: str | Path, tracks_path: str | Path) -> Path:
    """A path from the song table: absolute, relative to the working directory, or else to the repository
    root (two levels above results/corpus, where tracks.parquet lies)."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return Path(tracks_path).resolve().parents[2] / p


def read_audio(path: str | Path, dtype: str = "float32") -> tuple[np.ndarray, int]:
    """Read a file as (frames, channels) and its sample rate."""
    data, sr = sf.read(str(path), dtype=dtype, always_2d=True)
    return data, sr


def write_flac(path: str | Path, audio: np.ndarray, sr: int) -> None:
    """Write (frames, channels) float in [-1, 1] or int16 audio as 16-bit FLAC."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, format="FLAC", subtype="PCM_16")


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (frames, channels) or (frames,) audio with soxr's high-quality filter."""
    if sr_in == sr_out:
        return audio
    return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(audio.dtype, copy=False)


class StreamResampler:
    """Resample a signal that arrives in blocks (soxr's streaming resampler).

    `finish` gives the same samples as `resample` on the whole signal (soxr's one-shot call runs
    the same filter), while the input at its own rate is never held: only the output is.
    """

    def __init__(self, sr_in: int, sr_out: int, channels: int) -> None:
        self.channels = channels
        self._stream = None if sr_in == sr_out else soxr.ResampleStream(sr_in, sr_out, channels, quality="HQ")
        self._chunks: list[np.ndarray] = []

    def push(self, block: np.ndarray) -> None:
        """Add the next (frames, channels) float32 block."""
        if self._stream is None:
            self._chunks.append(np.array(block, dtype=np.float32))  # a copy: callers may reuse their buffer
        else:
            self._chunks.append(self._stream.resample_chunk(block))

    def finish(self) -> np.ndarray:
        """The whole resampled signal, (frames, channels) float32; the resampler is spent."""
        if self._stream is not None:
            self._chunks.append(self._stream.resample_chunk(np.zeros((0, self.channels), np.float32), last=True))
        chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros((0, self.channels), np.float32)
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def to_stereo(audio: np.ndarray) -> np.ndarray:
    """Duplicate a mono (frames, 1) signal to two channels; stereo passes through."""
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.shape[1] == 1:
        return np.repeat(audio, 2, axis=1)
    if audio.shape[1] == 2:
        return audio
    raise ValueError(f"to_stereo expects 1 or 2 channels, got {audio.shape[1]}")


def rms(audio: np.ndarray) -> float:
    """Root mean square over all samples and channels."""
    if audio.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def framewise_rms(audio: np.ndarray, sr: int, hop_s: float) -> np.ndarray:
    """RMS of consecutive non-overlapping windows of hop_s seconds (last one may be short)."""
    hop = max(1, round(hop_s * sr))
    n = int(np.ceil(audio.shape[0] / hop))
    return np.array([rms(audio[i * hop : (i + 1) * hop]) for i in range(n)], dtype=np.float64)


def loudness_gain(audio: np.ndarray, sr: int, target_lufs: float, peak_ceiling: float) -> float:
    """Linear gain that brings audio to target_lufs without its peak exceeding peak_ceiling.

    The peak cap wins over the loudness target: we never clip or limit, so a sum of
    stems scaled by this gain stays an exact sum.
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak == 0.0:
        return 1.0
    meter = pyloudnorm.Meter(sr)
    loudness = meter.integrated_loudness(audio.astype(np.float64))
    gain = 1.0 if not np.isfinite(loudness) else 10.0 ** ((target_lufs - loudness) / 20.0)
    return float(min(gain, peak_ceiling / peak))
