"""The evaluation prompt set: a text prompt, lyrics and tags per song, read and validated in one place.

Every system under comparison is generated from the same prompts, so differences in the metrics come
from the systems and not from what they were asked for. The shipped set is
`workflow/resources/eval_prompts.jsonl`; a config may point at another file in the same format,
one JSON object per line:

    {"id": "p001", "prompt": "An upbeat ...", "lyrics": "[VERSE]\\n...\\n[CHORUS]\\n...",
     "tags": {"genre": "pop", "subgenre": "dance pop", "gender": "female vocals", "mood": "happy",
              "instruments": ["drums", "synth bass"], "feelings": ["carefree"]}}

Genre, sub-genre, gender, mood and instruments must be in the tag vocabulary (musicot.prep.tags),
since the LM has tokens for those tags only; feelings are free text. Lyrics are split into sections
by lines holding one of SECTION_TAGS. A bad file fails here, naming the file and line, rather than
part-way through a generation run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musicot.prep.tags import load_vocabulary

SECTION_TAGS = ("[INTRO]", "[VERSE]", "[CHORUS]", "[BRIDGE]", "[OUTRO]")
KEYS = ("id", "prompt", "lyrics", "tags")
TAG_KEYS = ("genre", "subgenre", "gender", "mood", "instruments", "feelings")
# tags key -> vocabulary family; "feelings" is free text. Instruments are a list, hence the plural key.
VOCABULARY_FAMILY = {
    "genre": "genre",
    "subgenre": "subgenre",
    "gender": "gender",
    "mood": "mood",
    "instruments": "instrument",
}
ALLOWED_SHOWN = 6  # allowed values quoted in an out-of-vocabulary error: enough to spot a typo
_SECTION_LINE = re.compile(r"^\s*(\[[^\]\n]*\])\s*$")


class PromptFileError(ValueError):
    """A prompt file that cannot be used; the message names the file and, where there is one, the line."""


class _Bad(Exception):
    """A problem with one line; load_prompts adds the file and line number."""


@dataclass(frozen=True)
class EvalPrompt:
    """One evaluation prompt: what every system is asked to generate."""

    id: str
    prompt: str
    lyrics: str
    genre: str
    subgenre: str
    gender: str
    mood: str
    instruments: tuple[str, ...]
    feelings: tuple[str, ...]


def section_tags(lyrics: str) -> list[str]:
    """The section tags of `lyrics` ("[VERSE]", ...) in order: lines holding only a bracketed word."""
    return [m.group(1) for line in lyrics.splitlines() if (m := _SECTION_LINE.match(line))]


def _check_keys(obj: Any, expected: tuple[str, ...], what: str) -> dict:
    if not isinstance(obj, dict):
        raise _Bad(f"{what} must be a JSON object, got {type(obj).__name__}")
    problems = []
    if missing := [k for k in expected if k not in obj]:
        problems.append(f"missing keys {missing}")
    if extra := sorted(set(obj) - set(expected)):
        problems.append(f"unexpected keys {extra}")  # likely a typo of an expected key: never ignore it
    if problems:
        raise _Bad(f"{what}: {', '.join(problems)} (expected {list(expected)})")
    return obj


def _string(obj: dict, key: str, prefix: str = "") -> str:
    if not isinstance(obj[key], str):
        raise _Bad(f"{prefix}{key} must be a string, got {type(obj[key]).__name__}")
    return obj[key]


def _strings(obj: dict, key: str) -> tuple[str, ...]:
    value = obj[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Bad(f"tags.{key} must be a list of strings, got {json.dumps(value)}")
    return tuple(value)


def _parse(obj: Any, vocabulary: Mapping[str, list[str]]) -> EvalPrompt:
    tags = _check_keys(_check_keys(obj, KEYS, "the record")["tags"], TAG_KEYS, "tags")
    texts = {key: _string(obj, key) for key in ("id", "prompt", "lyrics")}
    if empty := [key for key, value in texts.items() if not value.strip()]:
        raise _Bad(f"{empty[0]} is empty")
    found = section_tags(texts["lyrics"])
    if not found:
        raise _Bad(f"lyrics have no section tag: put one of {', '.join(SECTION_TAGS)} on its own line")
    if unknown := [t for t in found if t not in SECTION_TAGS]:
        raise _Bad(f"lyrics section tag {unknown[0]} is not one of {', '.join(SECTION_TAGS)}")
    single = {key: _string(tags, key, "tags.") for key in ("genre", "subgenre", "gender", "mood")}
    lists = {key: _strings(tags, key) for key in ("instruments", "feelings")}
    for key, family in VOCABULARY_FAMILY.items():
        allowed = list(vocabulary.get(family, []))
        for value in lists[key] if key in lists else (single[key],):
            if value not in allowed:
                shown = ", ".join(allowed[:ALLOWED_SHOWN]) + (", ..." if len(allowed) > ALLOWED_SHOWN else "")
                raise _Bad(f"tags.{key} {value!r} is not in the vocabulary's {family} family (allowed: {shown})")
    return EvalPrompt(**texts, **single, **lists)


def load_prompts(path: Path | str, vocabulary: Mapping[str, list[str]] | None = None) -> list[EvalPrompt]:
    """The prompts of a JSON-lines file, in file order; raises PromptFileError on the first problem.

    `vocabulary` (family -> tags) defaults to the project's (musicot.prep.tags.load_vocabulary).
    Blank lines are skipped, so a trailing newline or a spacer line is harmless.
    """
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"{path}: no such prompt file")
    vocabulary = load_vocabulary() if vocabulary is None else vocabulary
    prompts: list[EvalPrompt] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            prompt = _parse(json.loads(line), vocabulary)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:{number}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
        except _Bad as exc:
            raise PromptFileError(f"{path}:{number}: {exc}") from None
        if prompt.id in first_line:
            raise PromptFileError(
                f"{path}:{number}: duplicate id {prompt.id!r} (first on line {first_line[prompt.id]})"
            )
        first_line[prompt.id] = number
        prompts.append(prompt)
    if not prompts:
        raise PromptFileError(f"{path}: no prompts (the file is empty)")
    return prompts
