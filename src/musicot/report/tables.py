"""Write the run's tables as csv, markdown and LaTeX under results/tables/.

    python -m musicot.report.tables --corpus-summary results/corpus/summary.csv --out results/tables \
        [--prep-quality results/prep/quality.csv] [--clap-quality results/clap/embeddings/quality.csv \
        --clap-train results/clap/model/metrics.json --rvq-metrics results/rvq/metrics.json \
        --analyzability results/analysis/thought_analyzability.csv]

Each later stage adds its table here as one more input; a table is written in all three
formats from one DataFrame so they never disagree.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from musicot import plan as P

CORPUS_COLUMNS = {
    "split": "split",
    "songs": "songs",
    "minutes": "minutes",
    "vocal_songs": "with vocals",
    "disk_mb": "disk (MB)",
    "rejected": "rejected inputs",
    "build_cpu_s": "build CPU (s)",
}


def write_table(df: pd.DataFrame, out_dir: Path, name: str, caption: str, precision: int = 2) -> list[Path]:
    """`name`.csv, .md and .tex in `out_dir` (LaTeX floats at `precision` decimals); returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex")]
    df.to_csv(paths[0], index=False)
    readable = df.astype(object).where(df.notna(), None)  # missing values print empty, not "nan"
    paths[1].write_text(f"{caption}\n\n{readable.to_markdown(index=False, missingval='')}\n")
    latex = df.style.hide(axis="index").format(precision=precision, na_rep="")
    paths[2].write_text(latex.to_latex(caption=caption, label=f"tab:{name}", hrules=True))
    return paths


def corpus_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The corpus summary with readable headers."""
    return summary[list(CORPUS_COLUMNS)].rename(columns=CORPUS_COLUMNS)


def prep_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Preprocessing quality rows, values rounded for reading."""
    return quality.assign(value=quality["value"].round(3))[["step", "metric", "value", "n", "note"]]


THOUGHT_COLUMNS = ["part", "metric", "ours", "compare with", "which is", "n"]
# Which table says that a result the run plan ruled out (musicot.plan) is absent; the rest go to absent.md only.
ABSENT_IN = {
    P.SEPARATOR: "prep_quality",
    P.SEPARATION: "prep_quality",
    P.SDR: "prep_quality",
    P.VAD: "prep_quality",
    P.CLAP_TAGGING: "thought",
    P.CLAP_STEM_AUC: "thought",
    P.ANALYSIS_TRUTH: "thought",
    P.ANALYSIS_SEPARATED: "thought",
    P.SEMANTIC_CTC: "semantic",
    P.SEMANTIC_STEM_PROBE: "semantic",
}
EMBEDDINGS = {"quantized": "thought", "raw": "raw CLAP"}


def _number(value) -> float:
    """A metric value as float; null (a NaN written as JSON) stays NaN."""
    return float("nan") if value is None else float(value)


def clap_rows(quality: pd.DataFrame, train: dict | None = None, stem_auc: bool = True) -> list[dict]:
    """CLAP recall@k beside its chance level and zero-shot AUC per anchor beside 0.5 (valid split; the AUC
    only with true stems, `stem_auc`). A metric measured on no window gets no number: one row says so."""
    values = dict(zip(quality["metric"], quality["value"], strict=True))
    n = dict(zip(quality["metric"], quality["n"], strict=True))
    rows = []
    for name in [m for m in values if m.startswith("recall@")]:
        k = name.split("@")[1]
        rows.append(dict(metric=name, ours=values[name], ref=values.get(f"chance@{k}"), ref_is="chance", n=n[name]))
    for name in [m for m in values if m.startswith("auc_") and stem_auc]:
        rows.append(dict(metric=f"AUC {name[4:]}", ours=values[name], ref=0.5, ref_is="chance", n=n[name]))
    for name in [m for m in values if m.startswith(("zero_shot_acc_", "eq5_"))]:
        label = f"zero-shot {name[14:]} top-1" if name.startswith("zero_shot_acc_") else f"Eq. 5 {name[4:]}"
        rows.append(dict(metric=label, ours=values[name], n=n[name]))
    unmeasured = [r["metric"] for r in rows if r["n"] == 0]
    if unmeasured:
        rows = [r for r in rows if r["n"] != 0]
        rows.append(dict(metric=f"absent: no held-out window to measure {', '.join(unmeasured)} on"))
    if train is not None:
        rows.append(dict(metric="training wall time (s)", ours=_number(train.get("train_wall_s"))))
    return [dict(part="CLAP", **r) for r in rows]


def rvq_rows(metrics: dict) -> list[dict]:
    """RVQ per level: cosine of the 1..l prefix reconstruction, perplexity and dead codes beside the codebook size."""
    final, split = (metrics["valid"], "valid") if metrics.get("valid") else (metrics["train"], "train")
    size, levels = metrics["config"]["codebook_size"], metrics["config"]["levels"]
    n = metrics.get("eval_rows") if split == "valid" else metrics.get("train_rows")
    rows = []
    for level in range(1, levels + 1):
        prefix = "level 1" if level == 1 else f"levels 1-{level}"
        rows.append(dict(metric=f"level {level}: cosine of {prefix}", ours=_number(final[f"cos_l{level}"])))
        for key, label in (("perplexity", "perplexity"), ("dead", "dead codes")):
            value = _number(final[f"{key}_l{level}"])
            rows.append(dict(metric=f"level {level}: {label}", ours=value, ref=size, ref_is="codebook size"))
    rows.append(dict(metric="training wall time (s)", ours=_number(metrics.get("train_wall_s"))))
    return [dict(part=f"RVQ ({split} split)", n=n if r["metric"].startswith("level") else None, **r) for r in rows]


def by_property_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (property, value) of musicot.analysis.shifted.by_property: r per anchor, songs, windows."""
    keys = pd.MultiIndex.from_tuples(
        list(dict.fromkeys(zip(rows["property"], rows["value"], strict=True))), names=["property", "value"]
    )
    anchors = list(dict.fromkeys(rows["anchor"]))
    wide = rows.set_index(["property", "value", "anchor"])["r_pooled"].unstack("anchor")
    counts = rows.groupby(["property", "value"])[["n_songs", "n_windows"]].max()
    out = wide.reindex(index=keys, columns=anchors).join(counts).reset_index()
    out[anchors] = out[anchors].round(3)
    return out.rename(columns={a: f"r {a}" for a in anchors} | {"n_songs": "songs", "n_windows": "windows"})


def analyzability_rows(table: pd.DataFrame, shifted: pd.DataFrame | None = None) -> list[dict]:
    """Pooled r per anchor and stem source beside the paper's r (its generated songs, htdemucs_6s stems),
    the per-song mean r of the truth rows, and, with `shifted` (musicot.analysis.shifted), the same r on
    the shifted corpus beside the held-out corpus songs' (pooled and per song)."""
    rows = []
    for r in table.itertuples():
        what = f"{r.anchor}: {EMBEDDINGS.get(r.embedding, r.embedding)} vs {r.stems} stems"
        rows.append(
            dict(part="analyzability r", metric=what, ours=r.r_pooled, ref=r.paper_r, ref_is="paper", n=r.n_windows)
        )
    for r in table[table["stems"] == "truth"].itertuples():
        what = f"{r.anchor}: {EMBEDDINGS.get(r.embedding, r.embedding)} vs truth stems, per-song mean"
        rows.append(dict(part="analyzability r", metric=what, ours=r.r_per_song_mean, n=r.n_songs))
    if shifted is None:
        return rows
    held_out = table.set_index(["anchor", "embedding", "stems"])
    for r in shifted.itertuples():
        key = (r.anchor, r.embedding, r.stems)
        base = held_out.loc[key] if key in held_out.index else None
        name = f"{r.anchor}: {EMBEDDINGS.get(r.embedding, r.embedding)} vs {r.stems} stems"
        for kind, ours, ref, n in (
            ("pooled", r.r_pooled, None if base is None else base["r_pooled"], r.n_windows),
            ("per-song mean", r.r_per_song_mean, None if base is None else base["r_per_song_mean"], r.n_songs),
        ):
            rows.append(
                dict(
                    part="analyzability r, shifted corpus",
                    metric=f"{name}, {kind}",
                    ours=ours,
                    ref=ref,
                    ref_is="held-out corpus songs",
                    n=n,
                )
            )
    return rows


def thought_table(
    clap_quality: pd.DataFrame | None = None,
    clap_train: dict | None = None,
    rvq_metrics: dict | None = None,
    analyzability: pd.DataFrame | None = None,
    absent: dict[str, str] | None = None,
    shifted: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The musical thought at a glance: CLAP, RVQ and analyzability rows (whichever inputs are given),
    and an "absent" row for each of its results the run plan ruled out (`absent`: {result: reason})."""
    absent = absent or {}
    rows = clap_rows(clap_quality, clap_train, P.CLAP_STEM_AUC not in absent) if clap_quality is not None else []
    rows += rvq_rows(rvq_metrics) if rvq_metrics is not None else []
    rows += analyzability_rows(analyzability, shifted) if analyzability is not None else []
    rows += [dict(part=name, metric=f"absent: {why}") for name, why in absent_rows(absent, "thought")]
    df = pd.DataFrame(rows, columns=["part", "metric", "ours", "ref", "ref_is", "n"])
    df = _typed(df, ["ours", "ref"], 3)
    df.columns = THOUGHT_COLUMNS
    return df


SEMANTIC_COLUMNS = ["part", "metric", "ours", "ci low", "ci high", "compare with", "which is", "n"]
NLL_LABELS = {
    "true_thought": "audio NLL/token: musicot LM, true thought",
    "shuffled_thought": "audio NLL/token: musicot LM, another song's thought",
    "base": "audio NLL/token: base LM (no thought)",
    "shuffled_minus_true": "shuffled - true (paired, > 0: the thought informs)",
    "base_minus_true": "base - true (paired)",
}


def semantic_token_rows(quality: pd.DataFrame) -> list[dict]:
    """The semantic stage's quality rows (step, metric, value, n, note); a metric without a value (a probe
    whose truth this corpus lacks) is left out: the plan's "absent" row says why."""
    return [
        dict(part=f"semantic: {r.step}", metric=r.metric, ours=r.value, ref_is=r.note or None, n=r.n)
        for r in quality.itertuples()
        if pd.notna(r.value)
    ]


def lm_rows(metrics: dict) -> list[dict]:
    """Final losses of one LM on thought and audio tokens (train and valid splits), size and wall time."""
    final, part = metrics["final"], f"LM {metrics['system']}"
    rows = [
        dict(metric=f"{split} {kind} loss (nats/token)", ours=final[f"{split}_{kind}_loss"])
        for split in ("train", "valid")
        for kind in ("thought", "audio")
        if f"{split}_{kind}_loss" in final
    ]
    rows.append(dict(metric="parameters", ours=metrics["n_params"]))
    rows.append(dict(metric="training wall time (s)", ours=_number(metrics.get("train_wall_s"))))
    return [dict(part=part, **r) for r in rows]


def nll_rows(table: pd.DataFrame) -> list[dict]:
    """The true-vs-shuffled-thought-vs-base comparison with its bootstrap intervals over songs."""
    if "absent" in set(table["quantity"]):
        return [dict(part="does the thought inform?", metric=f"absent: {table['note'].iloc[0]}")]
    return [
        dict(
            part="does the thought inform?",
            metric=NLL_LABELS.get(r.quantity, r.quantity),
            ours=r.mean,
            ci_low=r.ci_low,
            ci_high=r.ci_high,
            ref_is=f"{r.confidence:.0%} bootstrap CI over songs",
            n=r.n_songs,
        )
        for r in table.itertuples()
    ]


def sampler_rows(bench: pd.DataFrame) -> list[dict]:
    """Tokens/s of each sampler and batch, and its speed-up over the naive sampler at batch 1."""
    return [
        dict(
            part="sampler",
            metric=f"{r.sampler} batch {r.batch}: tokens/s",
            ours=r.tokens_per_s,
            ref=r.speedup_vs_naive_b1,
            ref_is="x naive batch 1",
            n=r.tokens,
        )
        for r in bench.itertuples()
    ]


def semantic_table(
    quality: pd.DataFrame | None = None,
    lm_metrics: list[dict] | None = None,
    nll: pd.DataFrame | None = None,
    bench: pd.DataFrame | None = None,
    absent: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The semantic stage: tokens and what they know, both LMs' losses, the thought NLL test, sampler speed,
    and an "absent" row for each of its results the run plan ruled out."""
    rows = semantic_token_rows(quality) if quality is not None else []
    rows += [dict(part=name, metric=f"absent: {why}") for name, why in absent_rows(absent or {}, "semantic")]
    rows += [r for m in lm_metrics or [] for r in lm_rows(m)]
    rows += nll_rows(nll) if nll is not None else []
    rows += sampler_rows(bench) if bench is not None else []
    df = pd.DataFrame(rows, columns=["part", "metric", "ours", "ci_low", "ci_high", "ref", "ref_is", "n"])
    df = _typed(df, ["ours", "ci_low", "ci_high", "ref"], 4)
    df.columns = SEMANTIC_COLUMNS
    return df


def _typed(df: pd.DataFrame, numeric: list[str], decimals: int) -> pd.DataFrame:
    """`numeric` columns as floats rounded to `decimals`, `n` as nullable integers (a row without n stays empty)."""
    df = df.astype(dict.fromkeys(numeric, "float64")).round(dict.fromkeys(numeric, decimals))
    df["n"] = pd.array([None if pd.isna(v) else int(v) for v in df["n"]], dtype="Int64")
    return df


def absent_rows(absent: dict[str, str], table: str) -> list[tuple[str, str]]:
    """(result, reason) of the absent results `table` reports, in plan order."""
    return [(name, reason) for name, reason in absent.items() if ABSENT_IN.get(name) == table]


def absent_table(absent: dict[str, str]) -> pd.DataFrame:
    """Every result this run's config cannot make, and why (the run plan's words); one row says when none is."""
    absent = absent or {"(none)": "this configuration makes every result"}
    return pd.DataFrame({"result": list(absent), "absent because": list(absent.values())}, dtype="string")


def _read_json(path: Path | None) -> dict | None:
    return json.loads(path.read_text()) if path else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-summary", type=Path, required=True)
    parser.add_argument("--prep-quality", type=Path, help="results/prep/quality.csv")
    parser.add_argument(
        "--clap-quality",
        type=Path,
        nargs="+",
        help="results/clap/embeddings/quality.csv [results/clap/tags_quality.csv]",
    )
    parser.add_argument("--clap-train", type=Path, help="results/clap/model/metrics.json")
    parser.add_argument("--rvq-metrics", type=Path, help="results/rvq/metrics.json")
    parser.add_argument("--analyzability", type=Path, help="results/analysis/thought_analyzability.csv")
    parser.add_argument("--shifted", type=Path, help="results/analysis/thought_shifted.csv (shifted-corpus rows)")
    parser.add_argument("--shifted-corpus", type=Path, help="results/shifted/differences.csv (table shifted_corpus)")
    parser.add_argument(
        "--shifted-by-property",
        type=Path,
        help="results/analysis/thought_shifted_by_property.csv (table shifted_by_property)",
    )
    parser.add_argument("--semantic-quality", type=Path, help="results/semantic/quality.csv")
    parser.add_argument("--lm-metrics", type=Path, nargs="*", help="results/lm/<system>/model/metrics.json")
    parser.add_argument("--lm-nll", type=Path, help="results/lm/nll.csv")
    parser.add_argument("--sampler-bench", type=Path, help="results/benchmarks/lm_sampler.csv")
    parser.add_argument("--acoustic-quality", type=Path, help="results/acoustic/eval/quality.csv")
    parser.add_argument("--acoustic-metrics", type=Path, help="results/acoustic/eval/metrics.json")
    parser.add_argument("--acoustic-models", type=Path, nargs=2, help="results/acoustic/{vae,dit}/metrics.json")
    parser.add_argument("--system-metrics", type=Path, nargs="*", help="results/metrics/<system>.json, Table 1 order")
    parser.add_argument("--comparisons", type=Path, help="results/metrics/comparisons.csv")
    parser.add_argument("--paper-table1", type=Path, help="workflow/resources/paper_table1.yaml")
    parser.add_argument("--mos", type=Path, help="results/metrics/mos.csv (musicot.listen.ratings); none: n/a")
    parser.add_argument("--generated-analyzability", type=Path, help="results/metrics/analyzability.csv")
    parser.add_argument("--separator-mono", type=Path, help="results/metrics/separator_mono.csv")
    parser.add_argument("--copying", type=Path, help="results/metrics/copying.csv")
    parser.add_argument("--min-songs", type=int, default=10, help="evaluate.min_songs")
    parser.add_argument(
        "--absent", type=json.loads, default={}, help='JSON {result: reason} the run plan ruled out ("absent" rows)'
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    summary = pd.read_csv(args.corpus_summary)
    write_table(corpus_table(summary), args.out, "corpus", "Corpus: songs, minutes and build cost per split.")
    write_table(absent_table(args.absent), args.out, "absent", "What this configuration cannot make, and why.")
    if args.prep_quality:
        quality = pd.read_csv(args.prep_quality, keep_default_na=False, na_values=[""])
        missing = [dict(step=name, metric="absent", note=why) for name, why in absent_rows(args.absent, "prep_quality")]
        table = pd.concat([prep_table(quality), pd.DataFrame(missing, columns=["step", "metric", "note"])])
        write_table(table, args.out, "prep_quality", "Preprocessing scored against corpus truth.")
    thought_inputs = (args.clap_quality, args.clap_train, args.rvq_metrics, args.analyzability)
    if any(thought_inputs):
        thought = thought_table(
            pd.concat([pd.read_csv(p) for p in args.clap_quality]) if args.clap_quality else None,
            _read_json(args.clap_train),
            _read_json(args.rvq_metrics),
            pd.read_csv(args.analyzability) if args.analyzability else None,
            args.absent,
            pd.read_csv(args.shifted) if args.shifted else None,
        )
        caption = (
            "The musical thought: CLAP retrieval and zero-shot stem AUC (valid split), RVQ per level, "
            "and the analyzability r per anchor beside the paper's (arXiv 2503.19611, section 5.3); on the "
            "shifted corpus (songs made differently, never trained on) beside the held-out corpus songs'."
        )
        write_table(thought, args.out, "thought", caption, precision=3)  # the paper gives r to 3 decimals
    if args.shifted_corpus:
        caption = "How the shifted evaluation corpus differs from the training corpus (sets drawn from; truth levels)."
        write_table(pd.read_csv(args.shifted_corpus, dtype=str), args.out, "shifted_corpus", caption)
    if args.shifted_by_property:
        caption = "The thought's pooled r on the shifted corpus within the songs that drew each value of each property."
        table = by_property_table(pd.read_csv(args.shifted_by_property, dtype={"value": str}))
        write_table(table, args.out, "shifted_by_property", caption, precision=2)
    if args.semantic_quality or args.lm_metrics or args.lm_nll or args.sampler_bench:
        semantic = semantic_table(
            pd.read_csv(args.semantic_quality, keep_default_na=False, na_values=[""])
            if args.semantic_quality
            else None,
            [json.loads(p.read_text()) for p in args.lm_metrics or []],
            pd.read_csv(args.lm_nll) if args.lm_nll else None,
            pd.read_csv(args.sampler_bench) if args.sampler_bench else None,
            args.absent,
        )
        caption = (
            "The semantic stage: what the 25 Hz tokens know (validation split, probes vs log-mel), both LMs' losses, "
            "whether the thought informs the audio tokens (NLL per token, bootstrap CIs) and the sampler's speed."
        )
        write_table(semantic, args.out, "semantic", caption, precision=3)
    if args.acoustic_quality:
        from musicot.report.acoustic_table import acoustic_table

        vae, dit = (json.loads(p.read_text()) for p in args.acoustic_models)
        space = json.loads(args.acoustic_metrics.read_text())["space"]
        table = acoustic_table(pd.read_csv(args.acoustic_quality), vae, dit, space)
        caption = (
            "The acoustic stage on validation songs: originals, VAE-GAN reconstructions, the fixed mel space's "
            "round trip "
            "and DiT re-syntheses from the true semantic tokens (no CLAP vector), then "
            f"the models and their speed on this CPU. The DiT models {space} frames."
        )
        write_table(table, args.out, "acoustic", caption, precision=3)
    if args.system_metrics:
        generated_tables(args)


def generated_tables(args: argparse.Namespace) -> None:
    """table1, table1_orderings, analyzability, copying: the generation stage's tables."""
    import yaml

    from musicot.analysis.thought import PAPER_R
    from musicot.report.table1 import analyzability_table, copying_table, mos_table, orderings_table, table1

    metrics = [json.loads(p.read_text()) for p in args.system_metrics]
    paper = yaml.safe_load(args.paper_table1.read_text()) if args.paper_table1 else {}
    mos = pd.read_csv(args.mos) if args.mos else None
    hardware = metrics[0]["rtf"]["hardware"] if metrics else ""
    caption = (
        "Table 1: our systems (this run, tiny CPU models; FAD on our CLAP against the reference split, with a 95% "
        "bootstrap CI over prompts, whose resamples repeat songs and so raise FAD: the CI can sit above the estimate, "
        "compare systems by the paired differences of table1_orderings; FAD-infinity; RTF = wall seconds per audio "
        "second on "
        f"{hardware}) beside the paper's rows (arXiv 2503.19611, 1B models, RTX 4090)."
    )
    write_table(table1(metrics, paper, mos), args.out, "table1", caption, precision=3)
    n_raters = 0 if mos is None or mos.empty else int(mos["n_raters"].max())
    caption = (
        f"MOS from the listening kit (results/listening/mos): {n_raters} raters, 1-5 per dimension, mean with a "
        "Student-t 95% CI over ratings; overall is the mean of the dimensions (Table 1's MOS). The paper: 10 "
        "professionals, one MOS per system."
    )
    write_table(mos_table(mos, paper), args.out, "mos", caption, precision=3)
    if args.comparisons:
        caption = (
            "The paper's orderings on FAD: difference to full MusiCoT, ours with a paired bootstrap CI over prompts."
        )
        write_table(orderings_table(pd.read_csv(args.comparisons)), args.out, "table1_orderings", caption)
    if not args.generated_analyzability:
        why = args.absent.get(P.ANALYSIS_SEPARATED, "no generated-song analyzability was computed")
        table = pd.DataFrame(
            {"anchor": list(PAPER_R), "generated r": f"absent: {why}", "paper r": list(PAPER_R.values())}
        )
        write_table(
            table, args.out, "analyzability", "Analyzability of generated songs: absent in this run.", precision=3
        )
    else:
        heldout = pd.read_csv(args.analyzability) if args.analyzability else None
        table = analyzability_table(pd.read_csv(args.generated_analyzability), heldout, PAPER_R, args.min_songs)
        if args.separator_mono:
            mono = pd.read_csv(args.separator_mono).set_index("stem")
            table["separator SDR stereo / mono (dB)"] = [
                f"{mono.loc[a, 'sdr_stereo']:.2f} / {mono.loc[a, 'sdr_mono']:.2f}" if a in mono.index else ""
                for a in table["anchor"]
            ]
        caption = (
            "Analyzability of generated songs (musicot system, separated stems, thought frames the audio covers) "
            "vs held-out corpus songs (truth stems) vs the paper's r (section 5.3); with the separator's SDR on "
            "stereo and mono mixes of validation songs."
        )
        write_table(table, args.out, "analyzability", caption, precision=3)
    if args.copying:
        caption = (
            "Referencing by thought vs continuation of the song's tokens: longest run of tokens shared with the "
            "reference song and the share of sampled n-grams found in it (mean, 95% bootstrap CI over songs)."
        )
        write_table(copying_table(pd.read_csv(args.copying)), args.out, "copying", caption, precision=3)


if __name__ == "__main__":
    main()
