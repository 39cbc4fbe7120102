"""Lyrics for the built-in corpus: short lines from a mood's word bank, chorus lines repeat.

Words are plain English that espeak-ng pronounces well; a line is 4-7 words so it fits
one two-bar phrase of the vocal melody.
"""

from __future__ import annotations

import numpy as np

# Slots filled from each mood's bank; the fixed words keep lines grammatical.
TEMPLATES = (
    "{adj} {noun} in the {place}",
    "we {verb} through the {place}",
    "I {verb} for your {noun}",
    "hold the {adj} {noun}",
    "you and I {verb} all {time}",
    "under {adj} {noun} we {verb}",
    "the {noun} will {verb} {time}",
    "take me to the {adj} {place}",
    "every {time} I {verb}",
    "{verb} with me in the {place}",
)

BANKS: dict[str, dict[str, tuple[str, ...]]] = {
    "happy": {
        "adj": ("golden", "bright", "sunny", "sweet", "warm"),
        "noun": ("light", "sun", "smile", "song", "summer"),
        "place": ("city", "street", "garden", "sky", "park"),
        "verb": ("dance", "shine", "sing", "run", "fly"),
        "time": ("day", "night", "morning", "summer"),
    },
    "romantic": {
        "adj": ("tender", "gentle", "silver", "soft", "true"),
        "noun": ("heart", "love", "kiss", "rose", "moon"),
        "place": ("night", "moonlight", "garden", "rain", "dream"),
        "verb": ("hold", "wait", "fall", "stay", "dream"),
        "time": ("night", "evening", "winter", "time"),
    },
    "energetic": {
        "adj": ("wild", "electric", "burning", "loud", "fast"),
        "noun": ("fire", "thunder", "engine", "beat", "light"),
        "place": ("crowd", "highway", "arena", "city", "storm"),
        "verb": ("run", "jump", "shout", "ride", "rise"),
        "time": ("night", "day", "hour", "time"),
    },
    "calm": {
        "adj": ("quiet", "slow", "blue", "soft", "still"),
        "noun": ("river", "breeze", "cloud", "wave", "shore"),
        "place": ("valley", "ocean", "meadow", "harbor", "forest"),
        "verb": ("drift", "rest", "breathe", "float", "wander"),
        "time": ("evening", "morning", "season", "day"),
    },
    "sad": {
        "adj": ("empty", "cold", "broken", "grey", "lonely"),
        "noun": ("tears", "rain", "memory", "letter", "shadow"),
        "place": ("station", "window", "winter", "room", "road"),
        "verb": ("cry", "fade", "wait", "fall", "miss"),
        "time": ("night", "winter", "year", "morning"),
    },
    "dark": {
        "adj": ("black", "hollow", "cold", "deep", "silent"),
        "noun": ("shadow", "smoke", "ghost", "storm", "night"),
        "place": ("alley", "tunnel", "ruins", "forest", "dark"),
        "verb": ("hide", "burn", "fall", "crawl", "sink"),
        "time": ("midnight", "night", "hour", "winter"),
    },
    "angry": {
        "adj": ("red", "burning", "broken", "loud", "wild"),
        "noun": ("fire", "rage", "chain", "wall", "storm"),
        "place": ("street", "cage", "city", "fire", "ruins"),
        "verb": ("fight", "break", "scream", "burn", "run"),
        "time": ("night", "day", "time", "hour"),
    },
}


def make_line(mood: str, rng: np.random.Generator) -> str:
    """One lyric line for `mood`."""
    bank = BANKS[mood]
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    slots = {slot: words[rng.integers(len(words))] for slot, words in bank.items()}
    return template.format(**slots)


def make_lines(mood: str, n: int, rng: np.random.Generator) -> list[str]:
    """`n` lines, no line repeated back to back."""
    lines: list[str] = []
    while len(lines) < n:
        line = make_line(mood, rng)
        if not lines or line != lines[-1]:
            lines.append(line)
    return lines
