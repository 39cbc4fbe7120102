"""The run plan: what the configured corpus supplies, which results this config can make, and why not the rest.

Snakemake keeps an existing file when the rule that would make it cannot be resolved for the
current config, so a results tree built with one config would otherwise leak into the tables of
another. The plan decides, before any job, from the config and a look at the corpus source that
decodes no audio (`corpus_supplies`):

* which optional results are *absent* and why (`RunPlan.absent`): the rules that make them leave
  the DAG, the tables say "absent" with the reason, and files left by another config at their
  paths are moved to ``results/stale/`` (`quarantine`) so that no target can pick them up;
* which results are *blocked* (`RunPlan.blocked`): the default target needs them and nothing in
  the config can supply them (a captionless corpus without a CLAP checkpoint); the DAG stops with
  one message naming the missing input and the config key that supplies it.

The stage table in the README is `REQUIREMENTS` below, word for word.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("musicot.plan")

STALE_DIR = Path("results/stale")

# (stage, what it needs, what it does without it): the README's table.
REQUIREMENTS: tuple[tuple[str, str, str], ...] = (
    ("corpus", "audio files (folder or manifest) or the built-in synth", "nothing to do: stops"),
    (
        "separator",
        "true stems to train on (built-in corpus) or `prep.separation.checkpoint`",
        "absent: no separated stems, no SDR, no VAD on separated vocals, no analyzability on separated stems",
    ),
    ("separation SDR", "true stems to score against", "absent (separation still runs with a checkpoint)"),
    ("VAD", "separated vocals (`prep.vad.input: separated`) or the mix (`mix`)", "absent when separation is"),
    (
        "lyrics",
        "sidecar/manifest lyrics; Whisper (`prep.asr.checkpoint`) needs separated vocals",
        "songs without lyrics are marked instrumental-or-unknown; ASR without separation stops",
    ),
    ("structure, tempo/key tags", "audio only", "always run"),
    (
        "CLAP",
        "captions (sidecar `caption`, or `genre`/`mood`, at least two distinct texts), true stems, "
        "or `clap.pretrained`",
        "stops: the thought and everything after it need CLAP",
    ),
    (
        "CLAP tagging stage, zero-shot stem AUC",
        "true stems (the labels are stem loudness and activity)",
        "tagging skipped, AUC absent: said in the tables, metrics and log",
    ),
    ("RVQ thought", "CLAP window embeddings", "follows CLAP"),
    ("analyzability on true stems", "true stems", "absent"),
    ("analyzability on separated stems", "the separator", "absent"),
    ("semantic tokens (BEST-RQ)", "audio only", "always run"),
    (
        "CTC fine-tuning of BEST-RQ, CER",
        "timed lyrics (built-in corpus, `.lrc` sidecars)",
        "absent: tokens come from the self-supervised encoder alone (also when `semantic.ctc.enabled` is off)",
    ),
    (
        "semantic probes on stem activity",
        "true stems",
        "absent (the sung-vs-not probe needs timed lyrics)",
    ),
    (
        "LM (with and without the thought)",
        "CLAP, RVQ codes, semantic tokens; tags and lyrics when present",
        "follows CLAP; songs without lyrics train with an empty lyric condition",
    ),
    (
        "acoustic (VAE-GAN, DiT)",
        "audio, semantic tokens and CLAP (the song's CLAP vector conditions the DiT); `acoustic.vae.pretrained` "
        "replaces VAE training",
        "follows CLAP; the chain's stem AUC needs true stems (empty without them)",
    ),
    (
        "generation (Table 1's systems)",
        "both LMs, the acoustic stage, and Eq. 5's delta: calibrated on captioned valid songs, or "
        "`tag_selection.delta`",
        "follows the LM and acoustic stages; without a delta generation stops naming `tag_selection.delta`",
    ),
    (
        "evaluation",
        "a reference split with songs (FAD); an Audiobox-Aesthetics checkpoint; the separator (analyzability "
        "of generated songs)",
        "FAD stops naming `evaluate.fad.reference_split`; aesthetics reads 'n/a (no checkpoint)'; "
        "generated-song analyzability absent without a separator",
    ),
)


class PlanError(ValueError):
    """The config asks for a result that nothing in it can supply."""


@dataclass(frozen=True)
class Supplies:
    """What the configured corpus brings, known before any audio is decoded."""

    source: str
    where: str  # the folder or manifest (or "built-in synth")
    songs: int  # audio inputs found (files with an audio extension, manifest rows)
    stems: bool  # true stems for every song
    distinct_captions: int  # distinct caption texts CLAP could train on
    lyrics: int  # songs with lyrics (plain or timed)
    timed_lyrics: int = 0  # songs with word- or line-timed lyrics (CTC targets)


@dataclass(frozen=True)
class Absent:
    """A result this config cannot make: why, and the config key that would supply it ("" if none)."""

    reason: str
    key: str = ""
    outputs: tuple[str, ...] = ()  # its paths under results/, moved aside when left by another config


@dataclass(frozen=True)
class RunPlan:
    supplies: Supplies
    absent: Mapping[str, Absent] = field(default_factory=dict)
    blocked: Mapping[str, Absent] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name not in self.absent and name not in self.blocked

    def prep_steps(self, kind: str = "quality") -> list[str]:
        """Preprocessing steps that write `kind` files in this run ("quality": rows scored against truth,
        "rejected": the songs a step could not process), in table order."""
        needs = {"separation": SDR if kind == "quality" else SEPARATION, "vad": VAD}
        return [s for s in ("separation", "vad", "lyrics", "structure", "tags") if self.has(needs.get(s, s))]

    def explain(self, names: Iterable[str]) -> str:
        """Why this configuration cannot make `names`, one line each with the config key that would."""
        why = {**self.absent, **self.blocked}
        lines = [f"this configuration cannot make {', '.join(names)} ({self.supplies.where}):"]
        for name in names:
            key = why[name].key
            lines.append(f"  - {name}: {why[name].reason}" + (f" Config key: `{key}`." if key else ""))
        return "\n".join(lines)

    def blocking_message(self) -> str:
        """One message for everything the default target needs and cannot get."""
        lines = [self.explain(self.blocked)]
        lines.append(
            "Targets that need none of it still run, e.g. `snakemake --cores all results/prep/quality.csv`; "
            "see the README's table of what each stage needs."
        )
        return "\n".join(lines)

    def absent_reasons(self) -> dict[str, str]:
        """{result: reason} for the tables' "absent" rows."""
        return {name: why.reason for name, why in {**self.absent, **self.blocked}.items()}

    def unavailable_outputs(self) -> list[str]:
        return [p for why in (*self.absent.values(), *self.blocked.values()) for p in why.outputs]


# ---------------------------------------------------------------- what the corpus supplies


def _caption_text(meta: Mapping[str, object]) -> str:
    """The text CLAP trains on for a song without stem truth (musicot.clap.data.metadata_caption)."""
    from musicot.clap.data import metadata_caption

    return metadata_caption(*(str(meta.get(k) or "") for k in ("caption", "genre", "mood")))


def corpus_supplies(config: Mapping) -> Supplies:
    """Read the corpus source's listing and sidecars (or manifest columns), never its audio."""
    corpus = config["corpus"]
    if corpus["source"] == "synth":
        n = corpus["synth"]["n_songs"]
        sung = round(n * (1 - corpus["synth"]["instrumental_fraction"]))
        return Supplies("synth", "built-in synth corpus", n, True, n, sung, sung)
    from musicot.data.sources import folder_items, manifest_items

    path = corpus["ingest"]["path"]
    if not path:
        raise PlanError(f"corpus.ingest.path is required when corpus.source is {corpus['source']!r}")
    root = Path(path)
    if not root.exists():
        raise PlanError(f"corpus.ingest.path {root} does not exist")
    if corpus["source"] == "folder":
        items = folder_items(root, tuple(corpus["ingest"]["extensions"]), skip=Path("results"))
    else:
        items = manifest_items(root)
    items = [i for i in items if i.rejection is None]
    captions = {_caption_text(i.meta) for i in items} - {""}
    lyrics = sum(bool(i.lrc) or any(str(i.meta.get(k) or "").strip() for k in ("lyrics", "txt_lyrics")) for i in items)
    timed = sum(bool(i.lrc) for i in items)
    return Supplies(corpus["source"], f"{corpus['source']} {root}", len(items), False, len(captions), lyrics, timed)


# ---------------------------------------------------------------- the plan

SEPARATOR_OUT = ("results/prep/separator", "results/figures/separator_curve.pdf", "results/figures/separator_curve.png")
SEPARATION_OUT = ("results/prep/stems", "results/prep/separation_rejected.tsv")
SDR_OUT = ("results/prep/separation_quality.csv", "results/prep/separation_sdr.csv")
VAD_OUT = ("results/prep/vad.parquet", "results/prep/vad_quality.csv", "results/prep/vad_rejected.tsv")
THOUGHT_OUT = (
    "results/clap",
    "results/rvq",
    "results/analysis",
    "results/figures/thought_timeline.pdf",
    "results/figures/thought_timeline.png",
    "results/tables",
    "results/lm",
    "results/figures/lm_loss_musicot.pdf",
    "results/figures/lm_loss_musicot.png",
    "results/figures/lm_loss_base.pdf",
    "results/figures/lm_loss_base.png",
    "results/benchmarks/lm_sampler.csv",
    "results/benchmarks/lm_sampler.md",
    "results/acoustic",
    *(
        f"results/figures/{name}.{ext}"
        for name in ("acoustic_spectrograms", "acoustic_loss_vae", "acoustic_loss_dit")
        for ext in ("pdf", "png")
    ),
    "results/figures/acoustic_spectrograms",
)
# The names of results the plan may rule out, as the tables print them.
SEPARATOR, SEPARATION, SDR, VAD = "separator", "separation", "separation SDR", "VAD"
CLAP, CLAP_TAGGING, CLAP_STEM_AUC = "CLAP", "CLAP tagging stage", "CLAP zero-shot stem AUC"
LYRICS_ASR = "lyrics (ASR)"
SEMANTIC_CTC, SEMANTIC_STEM_PROBE = "CTC fine-tuning of BEST-RQ", "semantic probes on stem activity"
ANALYSIS_TRUTH, ANALYSIS_SEPARATED = "analyzability on true stems", "analyzability on separated stems"


def plan_run(config: Mapping, supplies: Supplies) -> RunPlan:
    """Absent and blocked results of `config` given what its corpus supplies."""
    prep, clap = config["prep"], config["clap"]
    absent: dict[str, Absent] = {}
    blocked: dict[str, Absent] = {}
    checkpoint = prep["separation"]["checkpoint"]
    for name, key, value in (
        (SEPARATION, "prep.separation.checkpoint", checkpoint),
        (CLAP, "clap.pretrained", clap["pretrained"]),
    ):
        if value and not Path(value).exists():
            blocked[name] = Absent(f"the configured checkpoint {value} does not exist.", key)
    if not supplies.stems:
        absent[SDR] = Absent("no true stems to score separation against.", "", SDR_OUT)
        absent[ANALYSIS_TRUTH] = Absent("no true stems: analyzability on truth needs the built-in corpus.")
        absent[CLAP_TAGGING] = Absent("no true stems: its labels are stem loudness.")
        absent[CLAP_STEM_AUC] = Absent("no true stems to tell which stems play in a window.")
    if not supplies.stems and not checkpoint:
        why = "no true stems to train a separator on and no checkpoint to load."
        key = "prep.separation.checkpoint"
        absent[SEPARATOR] = Absent(why, key, SEPARATOR_OUT)
        absent[SEPARATION] = Absent(why, key, SEPARATION_OUT)
        absent[ANALYSIS_SEPARATED] = Absent(f"no separated stems: {why}", key)
        if prep["vad"]["input"] == "separated":
            absent[VAD] = Absent(f"no separated vocals: {why}", f"{key} (or prep.vad.input: mix)", VAD_OUT)
        if prep["asr"]["checkpoint"]:
            blocked[LYRICS_ASR] = Absent(f"Whisper transcribes the separated vocals, and there are none: {why}", key)
    if not config["semantic"]["ctc"]["enabled"]:
        absent[SEMANTIC_CTC] = Absent(
            "switched off in this configuration: tokens come from the self-supervised encoder.", "semantic.ctc.enabled"
        )
    elif not supplies.timed_lyrics:
        absent[SEMANTIC_CTC] = Absent(
            "no timed lyrics (built-in corpus or .lrc sidecars) to fine-tune on: tokens come from the "
            "self-supervised encoder alone, and there is no CER.",
            "semantic.ctc.enabled",
        )
    if not supplies.stems:
        absent[SEMANTIC_STEM_PROBE] = Absent("no true stems to tell which stems play in a frame.")
    if CLAP not in blocked and not (supplies.stems or supplies.distinct_captions >= 2 or clap["pretrained"]):
        blocked[CLAP] = Absent(
            f"it needs captions, true stems or a checkpoint; {supplies.songs} audio files with "
            f"{supplies.distinct_captions} distinct caption text(s) (sidecar .json `caption`, `genre` or `mood`) "
            "give it nothing to learn. Add captions, or point it at a local LAION-CLAP checkpoint.",
            "clap.pretrained",
            THOUGHT_OUT,
        )
    return RunPlan(supplies, absent, blocked)


def quarantine(paths: Iterable[str], root: Path = Path(".")) -> list[str]:
    """Move results that this config cannot make (left by another config) to results/stale/; returns them.

    Snakemake would take such a file as up to date when its rule cannot run for this config, and
    a table would mix two runs. Moved, not deleted: switching back may want them (e.g. a trained
    separator), and a later quarantine of the same path replaces the older copy.
    """
    moved = []
    for rel in paths:
        src = root / rel
        if not src.exists():
            continue
        dst = root / STALE_DIR / Path(rel).relative_to("results")
        if dst.is_dir():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dst))
        moved.append(rel)
        log.warning("%s was made by another configuration: moved to %s", rel, dst)
    return moved
