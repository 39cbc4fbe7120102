"""Evaluation prompts: the shipped set's coverage, and one clear error per kind of malformed file."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from musicot.generate.prompts import EvalPrompt, PromptFileError, load_prompts, section_tags
from tests.conftest import REPO

SHIPPED = REPO / "workflow" / "resources" / "eval_prompts.jsonl"
BUILT_IN_GENRES = ("pop", "rock", "jazz", "electronic", "folk", "funk")
GOOD = {
    "id": "p001",
    "prompt": "A bright pop song about a kite.",
    "lyrics": "[VERSE]\nUp it goes\n[CHORUS]\nHigher still",
    "tags": {
        "genre": "pop",
        "subgenre": "dance pop",
        "gender": "female vocals",
        "mood": "happy",
        "instruments": ["drums", "synth bass"],
        "feelings": ["breezy"],
    },
}


def record(**changes: Any) -> dict:
    """GOOD with top-level keys replaced (None deletes); "tags" changes are merged the same way."""
    out = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if key == "tags" and isinstance(value, dict):
            out["tags"].update(value)
            out["tags"] = {k: v for k, v in out["tags"].items() if v is not None}
        elif value is None:
            del out[key]
        else:
            out[key] = value
    return out


def write(tmp_path: Path, *lines: Any) -> Path:
    """A prompt file of `lines`: dicts and lists become JSON, strings are written as they are."""
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return path


def raises_at(path: Path, line: int | None, problem: str) -> AbstractContextManager:
    """pytest.raises for a PromptFileError naming `path`, `line` (if any), then matching `problem`."""
    where = re.escape(str(path)) + (f":{line}" if line is not None else "")
    return pytest.raises(PromptFileError, match=f"^{where}: .*{problem}")


def test_shipped_prompts_cover_the_genres_and_sections() -> None:
    prompts = load_prompts(SHIPPED)
    assert len(prompts) == 100
    assert [p.id for p in prompts] == [f"p{i:03d}" for i in range(1, 101)]
    genres = Counter(p.genre for p in prompts)
    assert all(genres[g] >= 8 for g in BUILT_IN_GENRES), genres
    for p in prompts:
        assert {"[VERSE]", "[CHORUS]"} <= set(section_tags(p.lyrics)), p.id
        sung = [line for line in p.lyrics.splitlines() if line.strip() and line not in section_tags(p.lyrics)]
        assert 8 <= len(sung) <= 20, p.id
        assert 1 <= len(p.feelings) <= 3 and p.instruments, p.id
    assert len({p.lyrics for p in prompts}) == len({p.prompt for p in prompts}) == 100


def test_a_good_line_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, "", record(id="p002"))  # a blank line in between is skipped
    first, second = load_prompts(path)
    assert first == EvalPrompt(
        id="p001",
        prompt=GOOD["prompt"],
        lyrics=GOOD["lyrics"],
        genre="pop",
        subgenre="dance pop",
        gender="female vocals",
        mood="happy",
        instruments=("drums", "synth bass"),
        feelings=("breezy",),
    )
    assert second.id == "p002"


def test_section_tags_in_order() -> None:
    lyrics = "[INTRO]\nla\n[VERSE]\nsome [words] here\n  [CHORUS]  \nla\n[CHORUS]"
    assert section_tags(lyrics) == ["[INTRO]", "[VERSE]", "[CHORUS]", "[CHORUS]"]
    assert section_tags("no tags at all") == []


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with raises_at(path, None, "no such prompt file"):
        load_prompts(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    with raises_at(path, None, "empty"):
        load_prompts(path)


def test_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, '{"id": "p002", "prompt": ')
    with raises_at(path, 2, "invalid JSON"):
        load_prompts(path)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (record(lyrics=None), r"missing keys \['lyrics'\]"),
        (record(title="x"), r"unexpected keys \['title'\]"),
        (record(tags={"mood": None}), r"tags: missing keys \['mood'\]"),
        (record(tags={"tempo": 120}), r"tags: unexpected keys \['tempo'\]"),
    ],
)
def test_missing_or_extra_keys(tmp_path: Path, line: dict, problem: str) -> None:
    path = write(tmp_path, line)
    with raises_at(path, 1, problem):
        load_prompts(path)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (["p001"], "the record must be a JSON object, got list"),
        (record(id=1), "id must be a string, got int"),
        (record(tags="pop"), "tags must be a JSON object, got str"),
        (record(tags={"mood": ["happy"]}), "tags.mood must be a string, got list"),
        (record(tags={"instruments": "drums"}), "tags.instruments must be a list of strings"),
        (record(tags={"feelings": ["warm", 3]}), "tags.feelings must be a list of strings"),
    ],
)
def test_wrong_types(tmp_path: Path, line: Any, problem: str) -> None:
    path = write(tmp_path, line)
    with raises_at(path, 1, re.escape(problem)):
        load_prompts(path)


@pytest.mark.parametrize("key", ["id", "prompt", "lyrics"])
def test_empty_text(tmp_path: Path, key: str) -> None:
    path = write(tmp_path, GOOD, record(**{"id": "p002", key: "  \n "}))
    with raises_at(path, 2, f"{key} is empty"):
        load_prompts(path)


def test_duplicate_id(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, record(id="p002"), "", GOOD)
    with raises_at(path, 4, "duplicate id 'p001' \\(first on line 1\\)"):
        load_prompts(path)


def test_unknown_section_tag(tmp_path: Path) -> None:
    path = write(tmp_path, record(lyrics="[VERSE]\nla\n[PRECHORUS]\nla\n[CHORUS]\nla"))
    with raises_at(path, 1, re.escape("section tag [PRECHORUS] is not one of [INTRO], [VERSE]")):
        load_prompts(path)


def test_lyrics_without_section_tags(tmp_path: Path) -> None:
    path = write(tmp_path, record(lyrics="la la la\nand more la"))
    with raises_at(path, 1, "no section tag"):
        load_prompts(path)


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({"genre": "polka"}, "tags.genre 'polka' is not in the vocabulary's genre family .allowed: pop, rock, jazz"),
        ({"gender": "male"}, "tags.gender 'male' is not in the vocabulary's gender family .allowed: male vocals"),
        ({"mood": "Happy"}, "tags.mood 'Happy' is not in the vocabulary's mood family .allowed: happy"),
        ({"instruments": ["drums", "kazoo"]}, "tags.instruments 'kazoo' is not in the vocabulary's instrument family"),
    ],
)
def test_tag_not_in_vocabulary(tmp_path: Path, tags: dict, problem: str) -> None:
    path = write(tmp_path, record(tags=tags))
    with raises_at(path, 1, problem):
        load_prompts(path)


def test_vocabulary_can_be_given(tmp_path: Path) -> None:
    vocabulary = {"genre": ["pop"], "subgenre": ["dance pop"], "gender": ["female vocals"], "mood": ["happy"]}
    path = write(tmp_path, GOOD)
    with raises_at(path, 1, "tags.instruments 'drums' is not in the vocabulary's instrument family .allowed: \\)"):
        load_prompts(path, vocabulary)
    assert load_prompts(path, {**vocabulary, "instrument": ["drums", "synth bass"]})[0].mood == "happy"
