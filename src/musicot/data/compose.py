"""Compose one song of the built-in corpus: form, arrangement, chords, parts, sung lyrics.

Everything is drawn from `np.random.default_rng([seed, index])`, so song `index` is the same
whatever shard renders it. The plan is pure data (notes in seconds); render.py turns it
into audio. The arrangement changes by section, which is what the analyzability experiment
measures: each instrument enters and leaves independently of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from musicot.data import lyrics as lyric_bank
from musicot.data.styles import (
    CRASH,
    FORMS,
    GM_TAGS,
    HIGH_TOM,
    LOW_TOM,
    MOODS,
    NOTE_NAMES,
    PROGRESSIONS,
    SCALES,
    SECTION_ENERGY,
    SNARE,
    STANDARD_KIT,
    STYLES,
    VOCAL_RANGE,
    Style,
    Voice,
)
from musicot.data.voice import VoiceConfig

PITCHED_STEMS = ("bass", "piano", "guitar", "other")
STEPS_PER_BAR = 16
TAIL_S = 1.5  # release and reverb after the last bar

# Playing pattern -> (16-step rhythm, voicing). Digits are onsets (velocity = 14 * digit),
# '=' holds the previous onset, '0' rests.
PATTERNS: dict[str, tuple[str, str]] = {
    "eighths": ("8=6=7=6=8=6=7=6=", "root"),
    "halves": ("8=======7=======", "root"),
    "walking": ("8===7===7===7===", "walk"),
    "offbeat": ("00708=0070708=00", "root"),
    "syncopated": ("8=06007=8=006070", "octave"),
    "block": ("8=======6=======", "chord"),
    "quarters": ("8===6===7===6===", "chord"),
    "comp": ("000060=0000060=0", "chord"),
    "arpeggio": ("7=5=6=5=7=5=6=5=", "arpeggio"),
    "stabs": ("0060000600600000", "chord"),
    "strum": ("7=5=6=5=7=5=6=5=", "strum"),
    "power": ("8=6=7=6=8=6=7=6=", "power"),
    "pluck": ("7060706070607060", "arpeggio"),
    "chops": ("0070007000700070", "strum"),
    "pad": ("6===============", "pad"),
    "lead": ("7===5===6=5=7===", "lead"),
}
REGISTERS = {"root": (28, 43), "walk": (28, 45), "octave": (28, 52), "chord": (55, 72), "arpeggio": (55, 76)}
REGISTERS |= {"strum": (40, 67), "power": (40, 55), "pad": (60, 76), "lead": (62, 84)}
STRUM_STAGGER_S = 0.012  # a strummed chord's strings do not sound together


@dataclass(frozen=True)
class StemGains:
    vocals: float
    bass: float
    drums: float
    guitar: float
    piano: float
    other: float


@dataclass(frozen=True)
class SynthConfig:
    """corpus.synth of the config schema (descriptions and defaults live there)."""

    n_songs: int
    shards: int
    duration_s: tuple[float, float]
    soundfont: str
    instrumental_fraction: float
    genres: tuple[str, ...]
    stem_gain_db: StemGains
    voice: VoiceConfig
    effects: bool = False


@dataclass(frozen=True)
class ShiftConfig:
    """How a song of the shifted evaluation corpus departs from the built-in one (analysis.shifted of
    the schema; musicot.data.shifted). Every value is drawn per song from these sets, which the
    schema's defaults keep outside what the STYLES of the training corpus use."""

    programs: Mapping[str, tuple[int, ...]]  # pitched stem -> GM programs
    drum_kits: tuple[int, ...]
    tempo: tuple[tuple[int, int], ...]  # BPM ranges
    modes: tuple[str, ...]
    section_gain_db: float  # each stem's level in each section moves by up to +-this
    absent_fraction: float  # share of songs with one instrument stem silent throughout


# Song i of the shifted corpus draws from rng [seed, SHIFT_STREAM, i], the built-in corpus' from
# [seed, i]: no song of one can share its random stream with a song of the other.
SHIFT_STREAM = 7_919


def rng_key(index: int, seed: int, shifted: bool = False) -> tuple[int, ...]:
    """The entropy song `index` is composed from."""
    return (seed, SHIFT_STREAM, index) if shifted else (seed, index)


@dataclass(frozen=True)
class Note:
    start: float
    end: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Section:
    label: str
    start: float
    end: float
    first_bar: int
    bars: int
    active: frozenset[str]


@dataclass(frozen=True)
class LyricWord:
    line: int
    index: int
    text: str
    start: float
    end: float  # end of the note; the word is sung for voice.legato of it
    pitch: int
    velocity: float


@dataclass
class Part:
    stem: str
    tag: str
    program: int
    drum: bool
    pan: int
    notes: list[Note] = field(default_factory=list)


@dataclass
class SongPlan:
    song_id: str
    genre: str
    subgenre: str
    mood: str
    mode: str
    tonic: int
    tempo_bpm: int
    gender: str  # male | female | none
    duration_s: float
    sections: list[Section]
    parts: dict[str, Part]
    words: list[LyricWord]
    lines: list[str]
    # stem -> dB per section, applied to the rendered stem (the shifted corpus; empty: none)
    section_gain_db: dict[str, tuple[float, ...]] = field(default_factory=dict)
    absent: str = ""  # an instrument stem the composer left out throughout (the shifted corpus)

    @property
    def key(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    @property
    def instruments(self) -> list[str]:
        """Readable tags of the instruments heard somewhere in the song."""
        heard = set().union(*(s.active for s in self.sections))
        tags = [self.parts[s].tag for s in ("drums", *PITCHED_STEMS) if s in heard and self.parts[s].notes]
        return (["vocals"] if self.words else []) + tags

    @property
    def caption(self) -> str:
        adjective = MOODS[self.mood][1]
        voice = f"{self.gender} vocals" if self.gender != "none" else "no vocals (instrumental)"
        instruments = ", ".join(t for t in self.instruments if t != "vocals")
        style = self.subgenre if self.genre in self.subgenre else f"{self.subgenre} {self.genre}"
        return (
            f"A {adjective} {style} song in {self.key} at {self.tempo_bpm} BPM "
            f"with {voice}; {instruments}; the mood is {self.mood}."
        )


def song_id_for(index: int) -> str:
    return f"synth{index:05d}"


def compose_song(index: int, cfg: SynthConfig, seed: int, shift: ShiftConfig | None = None) -> SongPlan:
    """The full plan of song `index`; identical for identical (index, cfg, seed, shift).

    With `shift` the song is one of the shifted evaluation corpus: its own random stream
    (`rng_key`), GM programs, drum kit, mode and tempo from the shift's sets, per-section stem
    gains and, for some songs, one instrument left out."""
    rng = np.random.default_rng(list(rng_key(index, seed, shift is not None)))
    genre = str(cfg.genres[rng.integers(len(cfg.genres))])
    style = STYLES[genre]
    mood = str(style.moods[rng.integers(len(style.moods))])
    mode = MOODS[mood][0]
    tempo = int(rng.integers(style.tempo[0], style.tempo[1] + 1))
    kit = STANDARD_KIT
    if shift is not None:
        style, mode, tempo, kit = _shifted_style(style, shift, rng)
    tonic = int(rng.integers(12))
    gender = "none" if rng.random() < cfg.instrumental_fraction else str(rng.choice(["male", "female"]))
    bar_s = 240.0 / tempo

    target = rng.uniform(*cfg.duration_s)
    budget = int(np.clip(round((target - TAIL_S) / bar_s), 4, None))
    form = FORMS[rng.integers(len(FORMS))]
    sections = _arrange(_fit_form(form, budget), bar_s, style, gender != "none", rng)
    progressions = {lab: PROGRESSIONS[mode][rng.integers(len(PROGRESSIONS[mode]))] for lab in SECTION_ENERGY}
    chords = _bar_chords(sections, progressions, tonic, mode, style.sevenths)

    absent, gains = "", {}
    if shift is not None:
        sections, absent, gains = _shift_arrangement(sections, shift, rng)
    timing = _Timing(bar_s, style.swing)
    parts = {"drums": _drum_part(style, sections, timing, rng)}
    parts["drums"].program = kit
    for stem in PITCHED_STEMS:
        parts[stem] = _pitched_part(stem, getattr(style, stem), sections, chords, tonic, mode, timing, rng)
    words, lines = _vocal_part(mood, gender, sections, chords, timing, rng) if gender != "none" else ([], [])
    total_bars = sum(s.bars for s in sections)
    return SongPlan(
        song_id=song_id_for(index),
        genre=genre,
        subgenre=str(style.subgenres[rng.integers(len(style.subgenres))]),
        mood=mood,
        mode=mode,
        tonic=tonic,
        tempo_bpm=tempo,
        gender=gender,
        duration_s=total_bars * bar_s + TAIL_S,
        sections=sections,
        parts=parts,
        words=words,
        lines=lines,
        section_gain_db=gains,
        absent=absent,
    )


def _shifted_style(style: Style, shift: ShiftConfig, rng: np.random.Generator) -> tuple[Style, str, int, int]:
    """(style with the shift's GM programs, mode, tempo, drum kit): the same grooves and playing patterns
    voiced by instruments, in modes and at tempos the built-in corpus never uses."""
    voices = {}
    for stem in PITCHED_STEMS:
        program = int(rng.choice(shift.programs[stem]))
        voice = getattr(style, stem)
        voices[stem] = replace(voice, program=program, tag=GM_TAGS.get(program, stem))
    mode = str(shift.modes[rng.integers(len(shift.modes))])
    low, high = shift.tempo[rng.integers(len(shift.tempo))]
    tempo = int(rng.integers(low, high + 1))
    kit = int(rng.choice(shift.drum_kits))
    return replace(style, **voices), mode, tempo, kit


def _shift_arrangement(
    sections: list[Section], shift: ShiftConfig, rng: np.random.Generator
) -> tuple[list[Section], str, dict[str, tuple[float, ...]]]:
    """(sections without the absent stem, that stem or "", each stem's gain in dB per section)."""
    absent = ""
    if rng.random() < shift.absent_fraction:
        absent = str(rng.choice(["drums", *PITCHED_STEMS]))
        sections = [replace(s, active=s.active - {absent}) for s in sections]
    width = shift.section_gain_db
    gains = {
        stem: tuple(float(g) for g in rng.uniform(-width, width, len(sections)))
        for stem in ("vocals", "drums", *PITCHED_STEMS)
    }
    return sections, absent, gains


@dataclass(frozen=True)
class _Timing:
    bar_s: float
    swing: float

    def step_time(self, bar: int, step: int) -> float:
        """Start of a 16th step; off-beat 8ths are delayed by the style's swing."""
        t = (bar + step / STEPS_PER_BAR) * self.bar_s
        if step % 4 == 2:
            t += self.swing * self.bar_s / 8
        return t


def _fit_form(form: tuple[str, ...], budget: int) -> list[tuple[str, int]]:
    """Section lengths in bars that add up to `budget`, keeping the form's order."""
    labels = list(form)
    default = {"intro": 2, "outro": 2, "bridge": 2}
    bars = [default.get(lab, 4) for lab in labels]
    while sum(bars) > budget and len(labels) > 4:
        drop = max(i for i, lab in enumerate(labels) if lab not in ("intro", "outro")) - 1
        del labels[drop], bars[drop]
    while sum(bars) > budget and max(bars) > 1:
        bars[int(np.argmax(bars))] -= 1
    growable = [i for i, lab in enumerate(labels) if lab in ("verse", "chorus")] or [len(labels) - 1]
    k = 0
    while sum(bars) < budget:
        bars[growable[k % len(growable)]] += 2 if budget - sum(bars) >= 2 else 1
        k += 1
    return list(zip(labels, bars, strict=True))


def _arrange(
    form: list[tuple[str, int]], bar_s: float, style: Style, vocal: bool, rng: np.random.Generator
) -> list[Section]:
    """Which stems play in each section: independent draws, busier sections play more."""
    affinity = {stem: rng.uniform(0.55, 1.15) for stem in ("drums", *PITCHED_STEMS)}
    sections, bar = [], 0
    for label, bars in form:
        energy = SECTION_ENERGY[label]
        active = {s for s, a in affinity.items() if rng.random() < np.clip(a * (0.25 + 0.8 * energy), 0.05, 0.95)}
        if not active & {"piano", "guitar", "other"}:
            active.add(str(rng.choice(["piano", "guitar", "other"])))
        if vocal and (label in ("verse", "chorus") or (label == "bridge" and rng.random() < 0.5)):
            active.add("vocals")
        sections.append(Section(label, bar * bar_s, (bar + bars) * bar_s, bar, bars, frozenset(active)))
        bar += bars
    return sections


def _chord(tonic: int, mode: str, degree: int, seventh: bool) -> list[int]:
    """Pitch classes of the diatonic chord on `degree`, root first."""
    scale = SCALES[mode]
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [(tonic + scale[(degree + s) % 7]) % 12 for s in steps]


def _bar_chords(sections: list[Section], progressions: dict, tonic: int, mode: str, sevenths: bool) -> list[list[int]]:
    chords = []
    for sec in sections:
        prog = progressions[sec.label]
        chords += [_chord(tonic, mode, prog[b % len(prog)], sevenths) for b in range(sec.bars)]
    return chords


def _in_register(pcs: list[int], low: int, high: int) -> list[int]:
    """Every pitch in [low, high] whose pitch class is in `pcs`, ascending."""
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def _drum_part(style: Style, sections: list[Section], timing: _Timing, rng: np.random.Generator) -> Part:
    part = Part("drums", "drums", 0, True, 64)
    step_s = timing.bar_s / STEPS_PER_BAR
    for sec in sections:
        if "drums" not in sec.active:
            continue
        dynamics = 0.7 + 0.3 * SECTION_ENERGY[sec.label]
        if sec.label == "chorus":
            part.notes.append(Note(sec.start, sec.start + 4 * step_s, CRASH, 110))
        for bar in range(sec.first_bar, sec.first_bar + sec.bars):
            fill = bar == sec.first_bar + sec.bars - 1 and sec.bars > 1
            for key, grid in style.grooves.items():
                for step, ch in enumerate(grid):
                    if ch != "0" and not (fill and step >= 12):
                        _add(part, timing.step_time(bar, step), step_s, key, int(ch) * 14 * dynamics, rng)
            if fill:
                for step, key in zip(range(12, 16), (SNARE, SNARE, HIGH_TOM, LOW_TOM), strict=True):
                    _add(part, timing.step_time(bar, step), step_s, key, 90 * dynamics, rng)
    return part


def _add(part: Part, start: float, length: float, pitch: int, velocity: float, rng: np.random.Generator) -> None:
    vel = int(np.clip(velocity + rng.normal(0, 5), 1, 127))
    part.notes.append(Note(round(start, 6), round(start + length, 6), int(pitch), vel))


def _pitched_part(
    stem: str,
    voice: Voice,
    sections: list[Section],
    chords: list[list[int]],
    tonic: int,
    mode: str,
    timing: _Timing,
    rng: np.random.Generator,
) -> Part:
    part = Part(stem, voice.tag, voice.program, False, voice.pan)
    rhythm, voicing = PATTERNS[voice.pattern]
    low, high = REGISTERS[voicing]
    step_s = timing.bar_s / STEPS_PER_BAR
    scale_pitches = _in_register([(tonic + s) % 12 for s in SCALES[mode]], low, high)
    lead = scale_pitches[len(scale_pitches) // 2]
    for sec in sections:
        if stem not in sec.active:
            continue
        dynamics = 0.7 + 0.3 * SECTION_ENERGY[sec.label]
        for bar in range(sec.first_bar, sec.first_bar + sec.bars):
            chord = chords[bar]
            tones = _in_register(chord, low, high)
            onset_i = 0
            for step, ch in enumerate(rhythm):
                if not ch.isdigit() or ch == "0":
                    continue
                hold = 1 + len(rhythm[step + 1 :]) - len(rhythm[step + 1 :].lstrip("="))
                start, length = timing.step_time(bar, step), hold * step_s * 0.92
                vel = int(ch) * 14 * dynamics
                if voicing in ("root", "walk", "octave"):
                    root = tones[0]
                    if voicing == "walk" and onset_i:
                        root = tones[min(onset_i, len(tones) - 1)]
                    if voicing == "octave" and onset_i % 2 and root + 12 <= high:
                        root += 12
                    _add(part, start, length, root, vel, rng)
                elif voicing == "arpeggio":
                    _add(part, start, length, tones[onset_i % min(len(tones), 4)], vel, rng)
                elif voicing == "lead":
                    lead = int(np.clip(lead + rng.choice([-2, -1, 1, 2]), low, high))
                    lead = min(scale_pitches, key=lambda p: abs(p - lead))
                    _add(part, start, length, lead, vel, rng)
                else:
                    _chord_notes(part, voicing, tones, start, length, vel, rng)
                onset_i += 1
    return part


def _chord_notes(
    part: Part, voicing: str, tones: list[int], start: float, length: float, vel: float, rng: np.random.Generator
) -> None:
    if voicing == "power":
        pitches = [tones[0], tones[0] + 7, tones[0] + 12]
    elif voicing == "strum":
        pitches = tones[:5]
    else:  # chord / pad: one tone of each pitch class from the middle of the register
        pitches = sorted({p % 12: p for p in tones[len(tones) // 4 :]}.values())[:4]
    for i, p in enumerate(pitches):
        offset = i * STRUM_STAGGER_S if voicing == "strum" else 0.0
        _add(part, start + offset, length - offset, p, vel, rng)


def _vocal_part(
    mood: str,
    gender: str,
    sections: list[Section],
    chords: list[list[int]],
    timing: _Timing,
    rng: np.random.Generator,
) -> tuple[list[LyricWord], list[str]]:
    """One lyric line per two bars of every sung section; chorus lines repeat in each chorus."""
    chorus_lines = lyric_bank.make_lines(mood, 4, rng)
    low, high = VOCAL_RANGE[gender]
    words: list[LyricWord] = []
    lines: list[str] = []
    prev = (low + high) // 2
    for sec in sections:
        if "vocals" not in sec.active:
            continue
        n_lines = max(1, sec.bars // 2)
        texts = chorus_lines[:n_lines] if sec.label == "chorus" else lyric_bank.make_lines(mood, n_lines, rng)
        for i, text in enumerate(texts):
            bar = sec.first_bar + 2 * i
            span_bars = min(2, sec.first_bar + sec.bars - bar)
            line_words, prev = _sing_line(text, len(lines), bar, span_bars, chords, (low, high), prev, timing, rng)
            words += line_words
            lines.append(text)
    return words, lines


def _sing_line(
    text: str,
    line: int,
    bar: int,
    span_bars: int,
    chords: list[list[int]],
    vocal_range: tuple[int, int],
    prev: int,
    timing: _Timing,
    rng: np.random.Generator,
) -> tuple[list[LyricWord], int]:
    """Place a line's words on an 8th-note grid inside its bars, each on a chord tone near the last."""
    tokens = text.split()
    room = 8 * span_bars - 1  # eighths available, one left as a breath
    lengths = [int(rng.choice([2, 2, 3, 4])) if len(w) > 3 else int(rng.choice([1, 2, 2])) for w in tokens]
    while sum(lengths) > room:
        lengths[int(np.argmax(lengths))] -= 1
    eighth = timing.bar_s / 8
    out, pos = [], int(rng.integers(0, 2)) if sum(lengths) < room else 0
    for k, (word, n) in enumerate(zip(tokens, lengths, strict=True)):
        start_bar = bar + pos // 8
        tones = _in_register(chords[min(start_bar, len(chords) - 1)], *vocal_range)
        target = prev + int(rng.integers(-3, 4))
        pitch = min(tones, key=lambda p: abs(p - target))
        start = timing.step_time(bar, 2 * pos) if pos < 8 else timing.step_time(bar + 1, 2 * (pos - 8))
        out.append(LyricWord(line, k, word, round(start, 6), round(start + n * eighth, 6), pitch, rng.uniform(0.75, 1)))
        prev, pos = pitch, pos + n
    return out, prev
