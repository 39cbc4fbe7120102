# Config validation and the few helpers rules share.
import json

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SYNTH_SHARDS = list(range(config["corpus"]["synth"]["shards"]))


def config_arg(*sections):
    """The named config sections as compact JSON, passed to `python -m musicot...` via --config.

    Passing only what a stage reads makes Snakemake's params trigger rerun exactly the
    stages whose configuration changed.
    """
    return json.dumps(
        {k: config[k] for k in sections}, sort_keys=True, separators=(",", ":")
    )


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
