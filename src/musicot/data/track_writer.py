"""Cut the one decoding pass of a recording into tracks and write each as normalised 16-bit FLAC.

Runs in ingest's worker processes: `PartWriter` receives the blocks of the checking pass
(`musicot.data.checks.check_open`), resamples them to the corpus rate as they come and writes a
track as soon as the pass has moved past it, so a worker holds one track at a time.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from musicot.audio import StreamResampler, loudness_gain, to_stereo, write_flac
from musicot.data.checks import Rejection, SampleTally, Scanned, content_problem
from musicot.data.sources import Part, Plan
from musicot.data.table import CorpusAudio

STEREO = 2


class PartChecks(NamedTuple):
    """What a part of a split recording must pass on its own (the `corpus.ingest` values)."""

    min_duration_s: float
    silence_dbfs: float


@dataclass(frozen=True)
class Processed:
    """What a worker sends back for an accepted track (the audio itself is already on disk)."""

    duration_s: float
    gain_db: float
    content_sha1: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """What became of one planned track of a recording."""

    part: Part
    result: Processed | Rejection


def mix_path(out_dir: Path, song_id: str) -> Path:
    """Where a song's normalised mix lives inside the part directory."""
    return out_dir / "audio" / song_id / "mix.flac"


def normalise(x: np.ndarray, audio: CorpusAudio) -> tuple[np.ndarray, float]:
    """Stereo, loudness-normalised float32 audio (already at the corpus rate) and its gain in dB."""
    x = to_stereo(x)
    gain = loudness_gain(x, audio.sample_rate, audio.loudness_lufs, audio.peak_ceiling)
    return (x * np.float32(gain)).astype(np.float32), 20.0 * math.log10(gain)


class PartWriter:
    """Routes the blocks of the checking pass to the track they belong to and writes each track.

    A part is written once the pass has moved past it, so a worker holds one track at a time;
    the last (or only) track waits for the end of the pass, so that a file that fails a check
    costs no normalising. Parts are cut in this one front-to-back pass rather than decoded again
    after a seek: libsndfile's MP3 seeks can land off the exact sample (see `SequentialSoundFile`).
    """

    def __init__(self, plan: Plan, channels: int, checks: PartChecks, audio: CorpusAudio, out_dir: Path) -> None:
        self.plan, self.channels, self.checks, self.audio, self.out_dir = plan, channels, checks, audio, out_dir
        self.outcomes: list[Outcome] = []
        self.pos = 0  # input frames routed so far
        self._start(0)

    def _start(self, k: int) -> None:
        self.part = self.plan.part(k)
        kept = 1 if self.channels > STEREO else self.channels  # a downmix is mono until to_stereo
        self.resampler = StreamResampler(self.part.sample_rate, self.audio.sample_rate, kept)
        self.tally = SampleTally(self.channels)  # a part's own hash and level; a whole track uses the file's

    def push(self, block: np.ndarray) -> None:
        while len(block):
            if self.pos == self.part.end:
                if len(self.outcomes) + 1 == self.plan.count:
                    return  # past the last track (trim): only the checks see the rest
                self._close(None)
                self._start(len(self.outcomes))
            piece, block = block[: self.part.end - self.pos], block[self.part.end - self.pos :]
            if self.plan.count > 1:
                self.tally.add(piece)
            self.pos += len(piece)
            if self.channels > STEREO:  # the config promises a plain mean, no channel-layout guessing
                piece = piece.mean(axis=1, keepdims=True)
            self.resampler.push(piece)

    def finish(self, scanned: Scanned) -> tuple[Outcome, ...]:
        """Write the last track once the whole file passed its checks."""
        if self.pos != self.part.end:
            raise RuntimeError(f"the checked pass decoded {self.pos} frames, the plan needs {self.part.end}")
        self._close(scanned.content_sha1)
        return tuple(self.outcomes)

    def discard(self) -> None:
        """Remove what was written: the file failed a check after some of its parts were done."""
        for outcome in self.outcomes:
            shutil.rmtree(mix_path(self.out_dir, outcome.part.song_id).parent, ignore_errors=True)

    def _close(self, file_sha1: str | None) -> None:
        part = self.part
        try:
            result = self._write(file_sha1)
        except Exception as exc:  # one bad part must never take the run down
            shutil.rmtree(mix_path(self.out_dir, part.song_id).parent, ignore_errors=True)
            result = Rejection("unreadable", f"processing failed: {type(exc).__name__}: {exc}")
        if isinstance(result, Rejection) and part.count > 1:
            result = Rejection(result.reason, f"{part.note}: {result.detail}")
        self.outcomes.append(Outcome(part, result))
        self.resampler = self.tally = None  # let the part's samples go before the next one arrives

    def _write(self, file_sha1: str | None) -> Processed | Rejection:
        part, audio = self.part, self.audio
        sha1 = file_sha1  # a whole track, trimmed or not, keeps the hash of the whole recording
        if part.count > 1:
            stats = self.tally.stats()
            problem = content_problem(stats, part.sample_rate, *self.checks)
            if problem is not None:
                return problem
            sha1 = stats.content_sha1
        notes = []
        if self.channels > STEREO:
            notes.append(f"downmixed {self.channels}->{STEREO} channels")
        elif self.channels == 1:
            notes.append("mono->stereo")
        if part.note:
            notes.append(part.note)
        if part.sample_rate != audio.sample_rate:
            notes.append(f"resampled {part.sample_rate}->{audio.sample_rate} Hz")
        mix, gain_db = normalise(self.resampler.finish(), audio)
        notes.append(f"gain {gain_db:+.2f} dB")
        write_flac(mix_path(self.out_dir, part.song_id), mix, audio.sample_rate)
        return Processed(mix.shape[0] / audio.sample_rate, gain_db, sha1, tuple(notes))
