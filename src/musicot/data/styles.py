"""What each genre and mood of the built-in corpus sounds like: tempo, grooves, GM programs.

Data, not logic: compose.py reads these tables. Drum grooves are 16-step grids per bar
(1 = hit, velocity scaled by the digit: 1..9 -> 14..126) so a reader can see the groove.
GM program numbers are 0-based (FluidSynth's), drum notes are GM percussion keys.
"""

from __future__ import annotations

from dataclasses import dataclass

KICK, SIDE_STICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, TAMBOURINE, HIGH_TOM, LOW_TOM = (
    36,
    37,
    38,
    39,
    42,
    46,
    51,
    49,
    54,
    50,
    45,
)


@dataclass(frozen=True)
class Voice:
    """One pitched stem's instrument: GM program, readable tag, playing pattern, pan (0..127)."""

    program: int
    tag: str
    pattern: str
    pan: int = 64


@dataclass(frozen=True)
class Style:
    subgenres: tuple[str, ...]
    moods: tuple[str, ...]
    tempo: tuple[int, int]
    swing: float  # delay of off-beat 8ths as a fraction of an 8th
    grooves: dict[int, str]  # drum key -> 16-step grid
    bass: Voice
    piano: Voice
    guitar: Voice
    other: Voice
    sevenths: bool = False


STYLES: dict[str, Style] = {
    "pop": Style(
        subgenres=("dance pop", "synth pop", "ballad", "indie pop"),
        moods=("happy", "romantic", "sad", "energetic"),
        tempo=(92, 124),
        swing=0.0,
        grooves={KICK: "7000000070700000", SNARE: "0000800000008000", CLOSED_HAT: "5040504050405040"},
        bass=Voice(33, "electric bass", "eighths"),
        piano=Voice(0, "piano", "block", pan=50),
        guitar=Voice(27, "clean electric guitar", "strum", pan=84),
        other=Voice(48, "strings", "pad", pan=70),
    ),
    "rock": Style(
        subgenres=("hard rock", "indie rock", "pop rock", "punk"),
        moods=("energetic", "angry", "happy", "dark"),
        tempo=(110, 150),
        swing=0.0,
        grooves={
            KICK: "8000008080000000",
            SNARE: "0000900000009000",
            CLOSED_HAT: "6060606060606060",
        },
        bass=Voice(34, "picked bass", "eighths"),
        piano=Voice(1, "piano", "quarters", pan=44),
        guitar=Voice(29, "overdriven guitar", "power", pan=90),
        other=Voice(17, "organ", "pad", pan=60),
    ),
    "jazz": Style(
        subgenres=("swing", "bossa nova", "cool jazz", "jazz ballad"),
        moods=("calm", "romantic", "happy", "sad"),
        tempo=(84, 132),
        swing=0.33,
        grooves={RIDE: "6000405060004050", KICK: "3000000030000000", SIDE_STICK: "0000500000005000"},
        bass=Voice(32, "upright bass", "walking"),
        piano=Voice(0, "piano", "comp", pan=48),
        guitar=Voice(26, "jazz guitar", "comp", pan=80),
        other=Voice(65, "saxophone", "lead", pan=72),
        sevenths=True,
    ),
    "electronic": Style(
        subgenres=("house", "synthwave", "downtempo", "techno"),
        moods=("energetic", "dark", "happy", "calm"),
        tempo=(100, 128),
        swing=0.0,
        grooves={
            KICK: "8000800080008000",
            CLAP: "0000700000007000",
            OPEN_HAT: "0060006000600060",
            CLOSED_HAT: "3030303030303030",
        },
        bass=Voice(38, "synth bass", "offbeat"),
        piano=Voice(4, "electric piano", "block", pan=52),
        guitar=Voice(28, "muted guitar", "pluck", pan=86),
        other=Voice(89, "synth pad", "pad", pan=64),
    ),
    "folk": Style(
        subgenres=("americana", "singer-songwriter", "celtic folk", "country"),
        moods=("calm", "sad", "happy", "romantic"),
        tempo=(80, 118),
        swing=0.0,
        grooves={KICK: "6000000060000000", SIDE_STICK: "0000600000006000", TAMBOURINE: "0040004000400040"},
        bass=Voice(32, "acoustic bass", "halves"),
        piano=Voice(0, "piano", "arpeggio", pan=46),
        guitar=Voice(25, "acoustic guitar", "strum", pan=82),
        other=Voice(40, "violin", "lead", pan=70),
    ),
    "funk": Style(
        subgenres=("p-funk", "disco", "neo soul", "boogie"),
        moods=("happy", "energetic", "romantic", "dark"),
        tempo=(96, 120),
        swing=0.08,
        grooves={
            KICK: "8002000080200000",
            SNARE: "0000800300008000",
            CLOSED_HAT: "5353535353535353",
        },
        bass=Voice(36, "slap bass", "syncopated"),
        piano=Voice(7, "clavinet", "stabs", pan=42),
        guitar=Voice(27, "clean electric guitar", "chops", pan=88),
        other=Voice(61, "brass section", "stabs", pan=66),
        sevenths=True,
    ),
}

# Mood -> scale mode and the adjective used in captions.
MOODS: dict[str, tuple[str, str]] = {
    "happy": ("major", "cheerful"),
    "romantic": ("major", "tender"),
    "energetic": ("major", "driving"),
    "calm": ("major", "relaxed"),
    "sad": ("minor", "melancholic"),
    "dark": ("minor", "brooding"),
    "angry": ("minor", "aggressive"),
}

# Scale-degree chord progressions (0 = tonic), one chord per bar, chosen per section.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 3), (5, 3, 0, 4), (0, 3, 0, 4), (1, 4, 0, 5)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (5, 6, 0, 0)),
}
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Modes the built-in corpus never uses: the shifted evaluation corpus (musicot.data.shifted) plays in
# them, on the progressions of the nearest of major/minor (degrees work on any seven-note scale).
SCALES |= {"dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10)}
PROGRESSIONS |= {"dorian": PROGRESSIONS["minor"], "mixolydian": PROGRESSIONS["major"]}
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Song forms: section label sequences; compose.py fits one into the song length in whole bars.
FORMS = (
    ("intro", "verse", "chorus", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "verse", "verse", "chorus", "bridge", "chorus", "outro"),
    ("intro", "chorus", "verse", "chorus", "bridge", "outro"),
)
# How busy each section is: drives the chance that an instrument plays in it.
SECTION_ENERGY = {"intro": 0.25, "verse": 0.6, "chorus": 1.0, "bridge": 0.45, "outro": 0.25}

# Sung range (MIDI) per vocal gender.
VOCAL_RANGE = {"male": (48, 65), "female": (57, 74)}

# Readable tags of GM programs and drum kits (bank 128 presets) outside the STYLES above, for the
# shifted corpus' captions; a program missing here is tagged by its family's stem word.
GM_TAGS: dict[int, str] = {
    2: "electric grand piano",
    3: "honky-tonk piano",
    5: "electric piano",
    6: "harpsichord",
    11: "vibraphone",
    24: "nylon guitar",
    30: "distortion guitar",
    31: "guitar harmonics",
    35: "fretless bass",
    37: "slap bass",
    39: "synth bass",
    52: "choir",
    56: "trumpet",
    71: "clarinet",
    73: "flute",
    81: "saw lead",
}
STANDARD_KIT = 0  # the drum kit (bank 128 preset) every style of the built-in corpus plays
