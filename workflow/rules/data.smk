# Corpus: the built-in procedural songs (synth) or real audio (folder / manifest ingest).


rule synth_shard:
    output:
        directory("results/corpus/synth/shard{shard}"),
    log:
        "logs/corpus/synth_shard{shard}.log",
    benchmark:
        "benchmarks/corpus/synth_shard{shard}.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        cfg=config_arg("seed", "corpus"),
    shell:
        "python -m musicot.data.synth --config {params.cfg:q} --shard {wildcards.shard} "
        "--out {output} > {log} 2>&1"


rule ingest_corpus:
    input:
        ingest_source,
    output:
        directory("results/corpus/ingest"),
    log:
        "logs/corpus/ingest.log",
    benchmark:
        "benchmarks/corpus/ingest.tsv"
    conda:
        "../../envs/corpus.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "corpus"),
    shell:
        "python -m musicot.data.ingest --config {params.cfg:q} --out {output} "
        "--workers {threads} > {log} 2>&1"


rule corpus_table:
    input:
        corpus_parts,
    output:
        tracks="results/corpus/tracks.parquet",
        lines="results/corpus/lyric_lines.parquet",
        words="results/corpus/lyric_words.parquet",
        sections="results/corpus/sections.parquet",
        volume="results/corpus/stem_volume.parquet",
        rejected="results/corpus/rejected.tsv",
        summary="results/corpus/summary.csv",
    log:
        "logs/corpus/corpus_table.log",
    benchmark:
        "benchmarks/corpus/corpus_table.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        out=subpath(output.tracks, parent=True),
    shell:
        "python -m musicot.data.merge --parts {input} --out {params.out} > {log} 2>&1"
