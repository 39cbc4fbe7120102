"""Render a SongPlan's parts with FluidSynth, one stem at a time, and write its MIDI file.

Each stem is rendered alone on a freshly reset synth so the stems sum to the mix exactly
and nothing of one stem leaks into another. The SoundFont is loaded once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import mido
import numpy as np

from musicot.data.compose import Part, SongPlan

DRUM_CHANNEL = 9
PITCHED_CHANNEL = 0
MIDI_TICKS_PER_BEAT = 480
FLUID_BLOCK = 64  # FluidSynth applies events at this sample granularity


class _Synth:
    """One FluidSynth instance that counts the samples it has rendered.

    FluidSynth renders in 64-sample blocks and applies events at block boundaries, so the
    same notes land on different samples unless every part starts at the same block phase.
    """

    def __init__(self, soundfont: str, sr: int, effects: bool = False) -> None:
        import fluidsynth  # deferred: needs the libfluidsynth system library

        if not Path(soundfont).is_file():
            raise SoundFontError(
                f"SoundFont {soundfont} not found: run `make setup` (installs Debian's fluid-soundfont-gm) "
                "or set corpus.synth.soundfont to a General MIDI .sf2 file"
            )
        # Off for the built-in corpus: reverb and chorus smear stems and tie level truth to effect
        # tails. On for the shifted corpus, whose mixing is meant to differ. FluidSynth reads these
        # settings only when the synth is created.
        switch = int(effects)
        self.fs = fluidsynth.Synth(
            samplerate=float(sr), **{"synth.reverb.active": switch, "synth.chorus.active": switch}
        )
        self.sfid = self.fs.sfload(soundfont)
        if self.sfid < 0:
            raise SoundFontError(f"FluidSynth could not load SoundFont {soundfont}")
        self.rendered = 0

    def samples(self, n: int) -> np.ndarray:
        """(n, 2) float32 frames. Float output, because FluidSynth's int16 path adds
        dither from a global noise table, which would make renders differ run to run."""
        out = np.empty((n, 2), dtype=np.float32)
        ptr = out.ctypes.data
        _write_float(self.fs.synth, n, ptr, 0, 2, ptr + 4, 0, 2)
        self.rendered += n
        return out

    def reset(self) -> None:
        """Silence everything at once and realign to a block boundary.

        Not system_reset: it lets sounding voices release (seconds of drum tails), and it
        undoes an all-sounds-off issued in the same block.
        """
        for channel in range(16):
            self.fs.all_sounds_off(channel)
            self.fs.cc(channel, 121, 0)  # reset all controllers
        self.samples(16 * FLUID_BLOCK + (-self.rendered) % FLUID_BLOCK)


class SoundFontError(RuntimeError):
    """The configured SoundFont is missing or FluidSynth cannot load it."""


@lru_cache(maxsize=1)
def _bind_write_float():
    """ctypes binding of fluid_synth_write_float (pyfluidsynth only wraps the int16 writer)."""
    from ctypes import c_int, c_void_p

    import fluidsynth

    args = [("synth", c_void_p, 1), ("len", c_int, 1)]
    for side in ("l", "r"):
        args += [(f"{side}out", c_void_p, 1), (f"{side}off", c_int, 1), (f"{side}incr", c_int, 1)]
    return fluidsynth.cfunc("fluid_synth_write_float", c_int, *args)


def _write_float(*args) -> None:
    if _bind_write_float()(*args) != 0:
        raise RuntimeError("fluid_synth_write_float failed")


def render_parts(
    parts: Iterable[Part], n_samples: int, sr: int, soundfont: str, effects: bool = False
) -> dict[str, np.ndarray]:
    """Stereo float32 (n_samples, 2) audio of each part, keyed by stem.

    One fresh synth per song: a synth's voice pool carries state from earlier notes, so a
    shared one would make a song's audio depend on which songs its shard rendered before.
    """
    synth = _Synth(soundfont, sr, effects)
    try:
        return {part.stem: _render_part(synth, part, n_samples, sr) for part in parts}
    finally:
        synth.fs.delete()


def _render_part(synth: _Synth, part: Part, n_samples: int, sr: int) -> np.ndarray:
    synth.reset()
    channel = DRUM_CHANNEL if part.drum else PITCHED_CHANNEL
    synth.fs.program_select(channel, synth.sfid, 128 if part.drum else 0, part.program)
    synth.fs.cc(channel, 10, part.pan)
    events = sorted(
        [(round(n.start * sr), 1, n.pitch, n.velocity) for n in part.notes]
        + [(round(n.end * sr), 0, n.pitch, 0) for n in part.notes]
    )  # note-offs sort before note-ons at the same sample so repeated notes retrigger
    out = np.zeros((n_samples, 2), dtype=np.float32)
    cursor = 0
    for sample, is_on, pitch, velocity in [*events, (n_samples, -1, 0, 0)]:
        sample = min(sample, n_samples)
        if sample > cursor:
            out[cursor:sample] = synth.samples(sample - cursor)
            cursor = sample
        if is_on == 1:
            synth.fs.noteon(channel, pitch, velocity)
        elif is_on == 0:
            synth.fs.noteoff(channel, pitch)
    return out


def write_midi(plan: SongPlan, path: Path) -> None:
    """The plan as a type-1 MIDI file (one track per stem, lyrics as meta events on the vocal track)."""
    tempo = mido.bpm2tempo(plan.tempo_bpm)
    ticks_per_s = MIDI_TICKS_PER_BEAT * plan.tempo_bpm / 60.0
    midi = mido.MidiFile(ticks_per_beat=MIDI_TICKS_PER_BEAT)
    conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    midi.tracks.append(conductor)
    for stem, part in plan.parts.items():
        channel = DRUM_CHANNEL if part.drum else len(midi.tracks) % 9
        events = [(0, mido.MetaMessage("track_name", name=stem))]
        if not part.drum:
            events.append((0, mido.Message("program_change", program=part.program, channel=channel)))
        for n in part.notes:
            events.append(
                (
                    round(n.start * ticks_per_s),
                    mido.Message("note_on", note=n.pitch, velocity=n.velocity, channel=channel),
                )
            )
            events.append((round(n.end * ticks_per_s), mido.Message("note_off", note=n.pitch, channel=channel)))
        midi.tracks.append(_delta_track(events))
    if plan.words:
        events = [(0, mido.MetaMessage("track_name", name="vocals"))]
        for w in plan.words:
            events.append((round(w.start * ticks_per_s), mido.MetaMessage("lyrics", text=w.text)))
            events.append(
                (round(w.start * ticks_per_s), mido.Message("note_on", note=w.pitch, velocity=100, channel=15))
            )
            events.append((round(w.end * ticks_per_s), mido.Message("note_off", note=w.pitch, channel=15)))
        midi.tracks.append(_delta_track(events))
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.save(str(path))


def _delta_track(events: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    track, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: (e[0], e[1].type == "note_on")):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track
