# Config validation and the few helpers rules share.
from pathlib import Path

from musicot.config import ConfigError, SCHEMA_PATH, section_json, validate

# The same validator the stage modules use: it fills every default from the schema and names
# each bad key (corpus.synth.n_songs: 'many' is not of type 'integer') before any job runs.
if Path(workflow.basedir).resolve() / "schemas" / "config.schema.yaml" != SCHEMA_PATH:
    raise WorkflowError(
        f"musicot is installed from {SCHEMA_PATH.parents[2]}, not this checkout"
    )
try:
    config.update(validate(config))
except ConfigError as error:
    raise WorkflowError(str(error)) from None

SYNTH_SHARDS = list(range(config["corpus"]["synth"]["shards"]))
# The song table every stage after the corpus reads (its truth tables lie beside it).
TRACKS = "results/corpus/tracks.parquet"


def config_arg(*sections):
    """The named config sections as compact JSON, passed to `python -m musicot...` via --config.

    Passing only what a stage reads makes Snakemake's params trigger rerun exactly the
    stages whose configuration changed.
    """
    return section_json(config, *sections)


def corpus_parts(wildcards):
    """Part directories the corpus table is merged from, by corpus.source."""
    if config["corpus"]["source"] == "synth":
        return expand("results/corpus/synth/shard{shard}", shard=SYNTH_SHARDS)
    if not config["corpus"]["ingest"]["path"]:
        raise ValueError(
            f"corpus.ingest.path is required when corpus.source is {config['corpus']['source']!r}"
        )
    return ["results/corpus/ingest"]


def ingest_source(wildcards):
    """The folder or manifest being ingested, so that changing it reruns the ingest."""
    return [config["corpus"]["ingest"]["path"]]


PREP_STEPS = ["separation", "vad", "lyrics", "structure", "tags"]


def separator_model(wildcards):
    """The separator to apply: a configured public checkpoint folder, or the one trained here."""
    public = config["prep"]["separation"]["checkpoint"]
    if public:
        return public
    if config["corpus"]["source"] != "synth":
        raise ValueError(
            "ingested songs have no stems to train a separator on: set prep.separation.checkpoint "
            "to a local Demucs checkpoint folder (e.g. one holding htdemucs_6s)"
        )
    return "results/prep/separator"
