"""`musicot <command> ...`: one entry point over the stage modules (each also runs as python -m)."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "synth": ("musicot.data.synth", "render one shard of the built-in corpus"),
    "ingest": ("musicot.data.ingest", "ingest a folder or manifest of real audio"),
    "merge": ("musicot.data.merge", "merge corpus parts into the song table"),
    "analyze": ("musicot.analysis.song_thought", "the musical thought of one audio file: codes, anchor timeline"),
    "render": ("musicot.acoustic.render", "render semantic tokens to audio with the acoustic DiT"),
    "generate": ("musicot.generate.song", "one song from a prompt and lyrics (optionally a reference song)"),
    "tables": ("musicot.report.tables", "write results/tables"),
}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: musicot <command> [options]\n\ncommands:\n" + "\n".join(lines))
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module = importlib.import_module(COMMANDS[argv[0]][0])
    module.main(argv[1:])


if __name__ == "__main__":
    main()
