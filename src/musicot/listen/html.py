"""What the listening pages share: reading a system's songs, copying audio beside a page, the page shell.

Pages are static files that open from their folder with no server and no network: styles and scripts
are inline, audio and figures are copied into the folder and referenced by relative paths, so the
folder can be zipped and sent to a listener as it is.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

SUMMARY_FILE, THOUGHTS_FILE = "generation.json", "thoughts.parquet"  # musicot.generate.run's outputs


@dataclass(frozen=True)
class SystemSongs:
    """One generation system's folder: its summary (generation.json), thoughts and songs by prompt id."""

    name: str
    folder: Path
    summary: dict
    thoughts: pd.DataFrame  # prompt_id, frame, level, code (no rows for a system without thought)
    songs: dict[str, Path]  # prompt_id -> FLAC

    @classmethod
    def load(cls, folder: Path) -> SystemSongs:
        folder = Path(folder)
        summary_path = folder / SUMMARY_FILE
        if not summary_path.exists():
            raise FileNotFoundError(f"{folder} has no {SUMMARY_FILE}: not a musicot.generate output folder")
        summary = json.loads(summary_path.read_text())
        thoughts = pd.read_parquet(folder / THOUGHTS_FILE)
        songs = {p.stem: p for p in sorted(folder.glob("*.flac"))}
        if not songs:
            raise ValueError(f"{folder} holds no songs (*.flac)")
        return cls(str(summary["system"]), folder, summary, thoughts, songs)

    @property
    def has_thought(self) -> bool:
        return not self.thoughts.empty


def sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_into(source: Path, folder: Path, name: str) -> str:
    """Copy `source` to folder/name and return that path relative to the page's folder, as a URL path."""
    target = Path(folder) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return name


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def script_json(data: object) -> str:
    """JSON safe inside <script type="application/json">: no '</' can close the element early."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def asset(name: str) -> str:
    """A file shipped with the package (musicot/listen/<name>): the pages' style sheet and scripts."""
    return resources.files("musicot.listen").joinpath(name).read_text(encoding="utf-8")


def page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document with the shared inline style sheet (and an inline script)."""
    tail = f"<script>\n{script}\n</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{asset('pages.css')}\n</style>\n</head>\n"
        f"<body>\n{body}\n{tail}</body>\n</html>\n"
    )


def audio_tag(src: str, label: str = "") -> str:
    aria = f' aria-label="{esc(label)}"' if label else ""
    return f'<audio controls preload="metadata" src="{esc(src)}"{aria}></audio>'
