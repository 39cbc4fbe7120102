"""The generated-samples pages: every system's songs, one click away, each with its drawn thought.

    python -m musicot.listen.samples --config CFG --prompts workflow/resources/eval_prompts.jsonl \
        --conditions results/generate/conditions --systems results/generate/base ... \
        --rvq results/rvq --clap-embeddings results/clap/embeddings --lm-data results/lm/data \
        --copying results/metrics/copying_songs.csv --tracks results/corpus/tracks.parquet --out results/pages

Writes a static site that opens from its folder (`index.html`, no server, no network):

* `index.html`: the systems and what each changes, then every prompt side by side across systems:
  the prompt, its lyrics, the prompt file's tags and the Eq. 5 tags the LM was given, and per system
  the song's player with a thumbnail of its drawn thought;
* `<system>.html`: that system's songs one after the other, each with its thought timeline (the cosine
  of each de-quantized thought frame with the anchor words, as the paper's Figures 1 and 3) and timing;
* `references.html`: the corpus songs used as references in the referencing-vs-continuation test, with
  their thought and how much of each the two ways of prompting copied.

Audio and figures are copied under `audio/`, `thoughts/` and `references/`, so the folder is whole.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from musicot.analysis.thought import anchor_embeddings, thought_frames
from musicot.analysis.timeline import plot_timeline
from musicot.config import load_config
from musicot.generate.conditions import CONDITIONS_FILE
from musicot.generate.prompts import EvalPrompt, load_prompts
from musicot.listen.html import SystemSongs, audio_tag, copy_into, esc, page

log = logging.getLogger("musicot.listen")


def system_thoughts(system: SystemSongs) -> dict[str, np.ndarray]:
    """{prompt_id: (M, L) codes} of a system's drawn thoughts (empty for a system without one)."""
    from musicot.metrics.analyzability import song_thoughts

    return song_thoughts(system.thoughts) if system.has_thought else {}


def draw_thought(codes: np.ndarray, ctx: Mapping, path: Path, title: str) -> None:
    table = thought_frames(codes, ctx["rvq"], ctx["anchor_text"], ctx["anchors"], ctx["window_s"])
    fig = plot_timeline(table, ctx["anchors"], [path], title=title)
    fig.clear()


def tag_chips(prompt: EvalPrompt | None, eq5: str) -> str:
    """The prompt file's tags (what the prompt asked for) and the Eq. 5 selection (what the LM was given)."""
    parts = []
    if prompt is not None:
        asked = [prompt.genre, prompt.subgenre, prompt.gender, prompt.mood, *prompt.instruments, *prompt.feelings]
        parts.append("asked: " + "".join(f"<span>{esc(t)}</span>" for t in asked if t))
    if eq5:
        parts.append(
            "Eq. 5 tags given to the LM: " + "".join(f'<span class="eq5">{esc(t)}</span>' for t in eq5.split("; "))
        )
    return f'<div class="tags">{"<br>".join(parts)}</div>'


def prompt_block(prompt_id: str, row: pd.Series | None, prompt: EvalPrompt | None) -> str:
    text = "" if row is None else str(row["prompt"])
    lyrics = "" if row is None else str(row["lyrics"])
    eq5 = "" if row is None else str(row.get("tags_text", ""))
    return (
        f'<p><b>{esc(prompt_id)}</b> <span class="prompt">{esc(text)}</span></p>{tag_chips(prompt, eq5)}'
        f'<details><summary>lyrics</summary><pre class="lyrics">{esc(lyrics)}</pre></details>'
    )


def system_description(system: SystemSongs) -> str:
    s = system.summary
    sample = s.get("sample", {})
    knobs = ", ".join(f"{k} {v}" for k, v in sample.items() if not isinstance(v, dict | list))
    rtf = s.get("rtf", {}).get("total")
    rtf_text = f"; RTF {rtf:.3f} on {s.get('hardware_text', '')}" if isinstance(rtf, float) else ""
    thought = "writes a musical thought first" if system.has_thought else "no musical thought"
    return (
        f'<li><a href="{esc(system.name)}.html"><b>{esc(system.name)}</b></a>: LM {esc(s.get("lm", ""))}, {thought}; '
        f"{esc(knobs)}{esc(rtf_text)}</li>"
    )


def nav(systems: Sequence[SystemSongs], mos_link: str) -> str:
    links = ['<a href="index.html">side by side</a>']
    links += [f'<a href="{esc(s.name)}.html">{esc(s.name)}</a>' for s in systems]
    links.append('<a href="references.html">reference songs</a>')
    if mos_link:
        links.append(f'<a href="{esc(mos_link)}">MOS listening test</a>')
    return f"<nav>{''.join(links)}</nav>"


def build_pages(
    systems: Sequence[SystemSongs],
    conditions: pd.DataFrame,
    prompts: Mapping[str, EvalPrompt],
    references: pd.DataFrame,
    ctx: Mapping,
    out: Path,
    max_prompts: int = 0,
    mos_link: str = "",
) -> dict[str, str]:
    """Write every page and its files into `out`; returns {page file: title}."""
    text = conditions.set_index("prompt_id")
    prompt_ids = sorted(set().union(*(s.songs for s in systems)))
    if max_prompts:
        prompt_ids = prompt_ids[:max_prompts]
    songs, thoughts = {}, {}  # (system, prompt) -> relative audio path / thought figure
    for system in systems:
        codes = system_thoughts(system)
        for prompt_id in prompt_ids:
            if prompt_id not in system.songs:
                continue
            source = system.songs[prompt_id]
            songs[system.name, prompt_id] = copy_into(source, out, f"audio/{system.name}/{prompt_id}{source.suffix}")
            if prompt_id in codes:
                name = f"thoughts/{system.name}/{prompt_id}.png"
                draw_thought(codes[prompt_id], ctx, out / name, f"drawn thought: {system.name}, {prompt_id}")
                thoughts[system.name, prompt_id] = name
    header = nav(systems, mos_link)
    pages = {}

    def row_of(prompt_id: str) -> pd.Series | None:
        return text.loc[prompt_id] if prompt_id in text.index else None

    # side by side: one row per prompt, one column per system
    head = "".join(f"<th>{esc(s.name)}</th>" for s in systems)
    rows = []
    for prompt_id in prompt_ids:
        cells = []
        for system in systems:
            audio = songs.get((system.name, prompt_id))
            if audio is None:
                cells.append("<td>not generated</td>")
                continue
            fig = thoughts.get((system.name, prompt_id))
            thumb = f'<a href="{esc(fig)}"><img class="thumb" src="{esc(fig)}" alt="drawn thought"></a>' if fig else ""
            cells.append(f"<td>{audio_tag(audio, f'{system.name} {prompt_id}')}{thumb}</td>")
        rows.append(
            f"<tr><td>{prompt_block(prompt_id, row_of(prompt_id), prompts.get(prompt_id))}</td>{''.join(cells)}</tr>"
        )
    intro = (
        "<h1>musicot: generated songs</h1>"
        f"{header}<p>{len(prompt_ids)} prompts, {len(systems)} systems. Every system got the same prompts and seeds; "
        "the thumbnails are each song's drawn musical thought (open one for its timeline).</p>"
        f"<ul>{''.join(system_description(s) for s in systems)}</ul>"
    )
    body = f"{intro}<table><tr><th>prompt</th>{head}</tr>{''.join(rows)}</table>"
    (out / "index.html").write_text(page("musicot: generated songs", body), encoding="utf-8")
    pages["index.html"] = "side by side"

    timing_cols = ["lm_s", "dit_s", "decoder_s", "total_s"]
    for system in systems:
        timing = pd.read_csv(system.folder / "timing.csv", dtype={"prompt_id": str}).set_index("prompt_id")
        items = []
        for prompt_id in prompt_ids:
            if (system.name, prompt_id) not in songs:
                continue
            fig = thoughts.get((system.name, prompt_id))
            figure = (
                f'<img class="thought" src="{esc(fig)}" alt="drawn thought of {esc(prompt_id)}">'
                if fig
                else '<p class="note">This system writes no musical thought.</p>'
            )
            t = timing.loc[prompt_id] if prompt_id in timing.index else None
            seconds = (
                ""
                if t is None
                else " ".join(f"{c.removesuffix('_s')} {float(t[c]):.2f} s" for c in timing_cols if c in t)
            )
            items.append(
                f'<section id="{esc(prompt_id)}"><h2>{esc(prompt_id)}</h2>'
                f"{prompt_block(prompt_id, row_of(prompt_id), prompts.get(prompt_id))}"
                f"{audio_tag(songs[system.name, prompt_id], f'{system.name} {prompt_id}')}"
                f'<p class="note">wall time: {esc(seconds)}</p>{figure}</section>'
            )
        body = f"<h1>{esc(system.name)}</h1>{header}<ul>{system_description(system)}</ul>{''.join(items)}"
        (out / f"{system.name}.html").write_text(page(f"musicot: {system.name}", body), encoding="utf-8")
        pages[f"{system.name}.html"] = system.name

    (out / "references.html").write_text(references_page(references, ctx, out, header), encoding="utf-8")
    pages["references.html"] = "reference songs"
    return pages


def references_page(references: pd.DataFrame, ctx: Mapping, out: Path, header: str) -> str:
    """The songs whose thought prompted the referencing test, each with its thought and what was copied."""
    items = []
    for song in references.itertuples():
        audio = copy_into(Path(song.audio_path), out, f"references/{song.song_id}{Path(song.audio_path).suffix}")
        fig = f"references/{song.song_id}_thought.png"
        draw_thought(song.thought, ctx, out / fig, f"thought of reference {song.song_id}")
        metrics = "".join(
            f"<tr><td>{esc(mode)}</td><td>{m['longest_run']}</td><td>{m['ngram_overlap']:.3f}</td><td>{m['n_generated']}</td></tr>"
            for mode, m in song.copying.items()
        )
        items.append(
            f'<section id="{esc(song.song_id)}"><h2>{esc(song.song_id)}</h2><p class="prompt">{esc(song.caption)}</p>'
            f"{audio_tag(audio, song.song_id)}"
            "<table><tr><th>prompted by</th><th>longest run shared with the song (tokens)</th>"
            f"<th>n-gram overlap</th><th>tokens sampled</th></tr>{metrics}</table>"
            f'<img class="thought" src="{esc(fig)}" alt="thought of {esc(song.song_id)}"></section>'
        )
    body = (
        f"<h1>Reference songs</h1>{header}<p>Held-out corpus songs used to test music referencing: the LM was given "
        "each song's thought (referencing) or its first seconds of semantic tokens (continuation), and the sampled "
        "tokens were compared with the song's own. Less shared is less copied.</p>"
        + ("".join(items) or "<p>No reference songs in this run.</p>")
    )
    return page("musicot: reference songs", body)


def reference_songs(copying: pd.DataFrame, tracks: pd.DataFrame, lm_data: Path, levels: int) -> pd.DataFrame:
    """song_id, audio_path, caption, thought ((M, L) codes as the LM got them), copying ({mode: metrics})."""
    table = pd.read_parquet(Path(lm_data) / "songs.parquet")
    by_id = table.set_index("song_id")
    meta = tracks.set_index("song_id")
    rows = []
    for song_id, group in copying.groupby("song_id", sort=True):
        if song_id not in by_id.index or song_id not in meta.index:
            raise ValueError(f"copying names song {song_id!r}, which the LM data or the corpus table lacks")
        entry = by_id.loc[song_id]
        thought = np.asarray(entry["thought"], dtype=np.int64).reshape(int(entry["n_frames"]), levels)
        modes = {
            r.mode: dict(longest_run=r.longest_run, ngram_overlap=r.ngram_overlap, n_generated=r.n_generated)
            for r in group.itertuples()
        }
        rows.append(
            dict(
                song_id=song_id,
                audio_path=meta.loc[song_id, "audio_path"],
                caption=meta.loc[song_id, "caption"],
                thought=thought,
                copying=modes,
            )
        )
    return pd.DataFrame(rows, columns=["song_id", "audio_path", "caption", "thought", "copying"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="config YAML path or inline JSON (default: schema defaults)")
    parser.add_argument("--prompts", type=Path, required=True, help="the evaluation prompt file (for its tags)")
    parser.add_argument("--conditions", type=Path, required=True, help="results/generate/conditions")
    parser.add_argument("--systems", type=Path, nargs="+", required=True, help="results/generate/<system> folders")
    parser.add_argument("--rvq", type=Path, required=True, help="results/rvq (de-quantizes the thoughts)")
    parser.add_argument("--clap-embeddings", type=Path, required=True, help="results/clap/embeddings (anchor texts)")
    parser.add_argument("--lm-data", type=Path, required=True, help="results/lm/data (the references' thoughts)")
    parser.add_argument("--copying", type=Path, required=True, help="results/metrics/copying_songs.csv")
    parser.add_argument("--tracks", type=Path, required=True, help="results/corpus/tracks.parquet")
    parser.add_argument("--mos-link", default="", help="relative link from the pages to the MOS kit's index.html")
    parser.add_argument("--out", type=Path, required=True, help="results/pages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from musicot.prep.common import load_tracks
    from musicot.rvq.model import read_rvq_config

    config = load_config(args.config)
    anchors = list(config["analysis"]["anchors"])
    ctx = dict(
        rvq=args.rvq,
        anchors=anchors,
        anchor_text=anchor_embeddings(args.clap_embeddings, anchors),
        window_s=float(config["clap"]["window_s"]),
    )
    systems = [SystemSongs.load(d) for d in args.systems]
    prompts = {p.id: p for p in load_prompts(args.prompts)}
    conditions = pd.read_parquet(args.conditions / CONDITIONS_FILE)
    rvq_cfg, _ = read_rvq_config(args.rvq)
    copying = pd.read_csv(args.copying, dtype={"song_id": str})
    references = reference_songs(copying, load_tracks(args.tracks), args.lm_data, rvq_cfg.levels)
    args.out.mkdir(parents=True, exist_ok=True)
    pages = build_pages(
        systems,
        conditions,
        prompts,
        references,
        ctx,
        args.out,
        int(config["listen"]["samples"]["max_prompts"]),
        args.mos_link,
    )
    log.info("wrote %d pages into %s: %s", len(pages), args.out, ", ".join(pages))


if __name__ == "__main__":
    main()
