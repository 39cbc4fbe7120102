# Config validation, the run plan and the few helpers rules share.
import json
from pathlib import Path

from musicot.config import ConfigError, SCHEMA_PATH, section_json, validate
from musicot import plan as P
from musicot.clap.timbres import check_disjoint

# The same validator the stage modules use: it fills every default from the schema and names
# each bad key (corpus.synth.n_songs: 'many' is not of type 'integer') before any job runs.
if Path(workflow.basedir).resolve() / "schemas" / "config.schema.yaml" != SCHEMA_PATH:
    raise WorkflowError(
        f"musicot is installed from {SCHEMA_PATH.parents[2]}, not this checkout"
    )
try:
    config.update(validate(config))
    # CLAP's timbre variants must leave the shifted corpus' programs and kits unheard
    check_disjoint(config["clap"]["timbres"], config["analysis"]["shifted"])
except ConfigError as error:
    raise WorkflowError(str(error)) from None

# What this config can make, decided before any job from the corpus source's listing and sidecars.
# Results it cannot make leave the DAG (the tables say why); files another config left at their
# paths are moved to results/stale/, so no target can take them as up to date.
try:
    PLAN = P.plan_run(config, P.corpus_supplies(config))
except P.PlanError as error:
    raise WorkflowError(str(error)) from None
P.quarantine(PLAN.unavailable_outputs())
# A corpus without timed lyrics has nothing to fine-tune BEST-RQ on: the semantic rules then run
# without CTC (its configured value would only make them refuse), and the tables say it is absent.
if not PLAN.has(P.SEMANTIC_CTC):
    config["semantic"]["ctc"]["enabled"] = False

SYNTH_SHARDS = list(range(config["corpus"]["synth"]["shards"]))
# The song table every stage after the corpus reads (its truth tables lie beside it).
TRACKS = "results/corpus/tracks.parquet"
# Every song's 25 Hz semantic tokens (rules/semantic.smk), read by the LM's song table.
SEMANTIC_TOKENS = "results/semantic/tokens"


def config_arg(*sections):
    """The named config sections as compact JSON, passed to `python -m musicot...` via --config.

    Passing only what a stage reads makes Snakemake's params trigger rerun exactly the
    stages whose configuration changed.
    """
    return section_json(config, *sections)


def train_launch(wildcards, resources):
    """The start of each training command (params.launch), one process or torchrun's `gpu` processes
    on each of the job's `nodes` (musicot.launch). Training rules declare both resources; the slurm
    profile sets them."""
    return f"python -m musicot.launch --procs {resources.gpu} --nodes {resources.nodes}"


def corpus_parts(wildcards):
    """Part directories the corpus table is merged from, by corpus.source."""
    if config["corpus"]["source"] == "synth":
        return expand("results/corpus/synth/shard{shard}", shard=SYNTH_SHARDS)
    return ["results/corpus/ingest"]  # the plan has checked corpus.ingest.path


def ingest_source(wildcards):
    """The folder or manifest being ingested, so that changing it reruns the ingest."""
    return [config["corpus"]["ingest"]["path"]]


def needs(*names):
    """Input function guarding the producer of `names`: stops the DAG with the plan's reason when one is
    ruled out (only an explicit target reaches it: consumers never ask for what the plan rules out).
    """

    def check(wildcards):
        missing = [n for n in names if not PLAN.has(n)]
        if missing:
            raise WorkflowError(PLAN.explain(missing))
        return []

    return check


def separator_model(wildcards):
    """The separator to apply: a configured public checkpoint folder, or the one trained here."""
    needs(P.SEPARATION)(wildcards)
    return config["prep"]["separation"]["checkpoint"] or "results/prep/separator"


def separated_stems(step):
    """The separated stems folder when `step` reads them in this run, else [] (an empty named input)."""
    reads = {
        "vad": config["prep"]["vad"]["input"] == "separated",
        "lyrics": bool(config["prep"]["asr"]["checkpoint"]),
        "analysis": PLAN.has(P.ANALYSIS_SEPARATED),
    }[step]
    return "results/prep/stems" if reads and PLAN.has(P.SEPARATION) else []


def stems_arg(wildcards, input):
    """--stems for a CLI whose stems input is optional."""
    return f"--stems {input.stems}" if input.stems else ""


def prep_outputs(kind):
    """Every preprocessing step's `kind` file (quality .csv or rejected .tsv) this run makes."""
    ext = "csv" if kind == "quality" else "tsv"
    return expand(
        "results/prep/{step}_{kind}.{ext}",
        step=PLAN.prep_steps(kind),
        kind=kind,
        ext=ext,
    )


def absent_arg():
    """The tables' "absent" rows: what this config cannot make and why, as JSON."""
    return json.dumps(PLAN.absent_reasons())  # in plan order


def default_targets(wildcards):
    """Everything the paper's tables and figures need, or one message on what this config lacks."""
    if PLAN.blocked:
        raise WorkflowError(PLAN.blocking_message())
    figures = [
        "thought_timeline",
        "lm_loss_musicot",
        "lm_loss_base",
        "acoustic_spectrograms",
        "acoustic_loss_vae",
        "acoustic_loss_dit",
    ]
    public = config["prep"]["separation"]["checkpoint"]
    if PLAN.has(P.SEPARATOR) and not public:  # the curve of a separator trained here
        figures.append("separator_curve")
    figures += ["thought_layout", "training_curves", "rtf_breakdown"]
    if PLAN.has(
        P.SEPARATION
    ):  # the generated songs are read through their separated stems
        figures += ["generated_timeline", "generated_scatter"]
    pages = [
        "results/pages",
        "results/listening/mos",
    ]  # what a person opens (rules/listen.smk)
    return [
        "results/tables",
        *(f"results/figures/{name}.pdf" for name in figures),
        *pages,
    ]


ACOUSTIC_EXAMPLES = ["original", "vae_reconstruction", "resynthesis"]
# The paper's Table 1 numbers, shipped with the workflow (read from any working directory).
PAPER_TABLE1 = str(Path(workflow.basedir) / "resources" / "paper_table1.yaml")


def trained_model_metrics(wildcards):
    """{name: metrics.json} of every model this run trains (the training-curves figure's panels)."""
    models = {}
    if PLAN.has(P.SEPARATOR) and not config["prep"]["separation"]["checkpoint"]:
        models["separator"] = "results/prep/separator"
    models["clap"] = (
        "results/clap/model/metrics.json"  # trained here, from scratch or from clap.pretrained
    )
    models["rvq"] = "results/rvq/metrics.json"
    models["semantic"] = "results/semantic/encoder"
    models["lm_musicot"] = "results/lm/musicot/model/metrics.json"
    models["lm_base"] = "results/lm/base/model/metrics.json"
    if not config["acoustic"]["vae"]["pretrained"]:
        models["vae"] = "results/acoustic/vae"
    models["dit"] = "results/acoustic/dit"
    return models


def generated_analyzability_table(wildcards):
    """The generated songs' analyzability table when this run has a separator, else nothing."""
    return "results/metrics/analyzability.csv" if PLAN.has(P.SEPARATION) else []


def generated_tables_args(wildcards, input):
    """--system-metrics ... and the other generation tables' inputs of `musicot.report.tables`."""
    args = [
        f"--system-metrics {' '.join(input.system_metrics)}",
        f"--comparisons {input.comparisons}",
        f"--paper-table1 {input.paper_table1}",
        f"--copying {input.copying}",
        f"--mos {input.mos}",
        f"--min-songs {config['evaluate']['min_songs']}",
    ]
    if input.generated_analyzability:
        mono = Path(input.generated_analyzability).with_name("separator_mono.csv")
        args.append(
            f"--generated-analyzability {input.generated_analyzability} --separator-mono {mono}"
        )
    return " ".join(args)


def acoustic_loss_label(wildcards):
    """The y-axis of an acoustic model's loss curve."""
    return {"vae": "multi-resolution STFT + KL (+ GAN)", "dit": "v-prediction MSE"}[
        wildcards.model
    ]


def acoustic_loss_title(wildcards):
    """The title of an acoustic model's loss curve; the VAE-GAN's says where the GAN terms join the loss."""
    if wildcards.model == "dit":
        return "acoustic DiT"
    start = config["acoustic"]["vae"]["train"]["disc_start"]
    return f"acoustic VAE-GAN (discriminator and its losses from step {start})"


def acoustic_example_folder(wildcards, output):
    """The folder beside the spectrogram figure that its audio files are copied into."""
    return str(Path(output.audio[0]).parent)


# Generation systems (rules/generate.smk): the wildcard is `gen_system`, as `system` names the two LMs.
GEN_SYSTEMS = [s["name"] for s in config["generate"]["systems"]]
GEN_LM = {s["name"]: s["lm"] for s in config["generate"]["systems"]}


wildcard_constraints:
    gen_system="|".join(GEN_SYSTEMS),


def prompts_file():
    """generate.prompts: a relative path is looked up in the working directory, then in this repository
    (where the shipped workflow/resources/eval_prompts.jsonl lies), so the default works from any -d.
    """
    path = Path(config["generate"]["prompts"])
    if path.is_absolute() or path.exists():
        return str(path)
    shipped = Path(workflow.basedir).parent / path
    return str(shipped) if shipped.exists() else str(path)


def system_lm(wildcards):
    """The trained LM a generation system samples with."""
    return f"results/lm/{GEN_LM[wildcards.gen_system]}/model/model.safetensors"


def training_curve_args(wildcards, input):
    """--model name=metrics.json for each trained model (folders give their metrics.json)."""
    return " ".join(
        f"{name}={path if path.endswith('.json') else str(Path(path, 'metrics.json'))}"
        for name, path in input.items()
    )


def mos_kit_systems(wildcards):
    """The generation folders the MOS kit plays (listen.mos.systems, all systems when empty)."""
    names = config["listen"]["mos"]["systems"] or GEN_SYSTEMS
    unknown = sorted(set(names) - set(GEN_SYSTEMS))
    if unknown:
        raise WorkflowError(
            f"listen.mos.systems names {unknown}, not in generate.systems {GEN_SYSTEMS}"
        )
    return expand("results/generate/{gen_system}", gen_system=names)


def mos_ratings_files(wildcards):
    """Every ratings file raters handed back (listen.mos.ratings/*.json): a new one reruns the MOS."""
    folder = Path(config["listen"]["mos"]["ratings"])
    return sorted(str(p) for p in folder.glob("*.json")) if folder.is_dir() else []
