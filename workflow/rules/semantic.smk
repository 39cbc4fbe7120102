# Semantic tokens at 25 Hz: a BEST-RQ encoder trained here (CTC-fine-tuned on the corpus lyrics when
# semantic.ctc.enabled), one k-means codebook on one layer, the tokens of every song, and linear probes
# of what they know. Training state lives in results/semantic/state (params, never output).


rule train_semantic:
    input:
        tracks=TRACKS,
        lines=rules.corpus_table.output.lines,
    output:
        model=directory("results/semantic/encoder"),
    log:
        "logs/semantic/train_semantic.log",
    benchmark:
        "benchmarks/semantic/train_semantic.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 2
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg("seed", "semantic"),
        state="results/semantic/state",
    shell:
        "{params.launch} musicot.semantic.train --config {params.cfg:q} --tracks {input.tracks} "
        "--out {output.model} --state {params.state} --threads {threads} > {log} 2>&1"


rule semantic_tokens:
    input:
        tracks=TRACKS,
        model=rules.train_semantic.output.model,
    output:
        tokens=directory("results/semantic/tokens"),
    log:
        "logs/semantic/semantic_tokens.log",
    benchmark:
        "benchmarks/semantic/semantic_tokens.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "semantic"),
    shell:
        "python -m musicot.semantic.tokens --config {params.cfg:q} --tracks {input.tracks} "
        "--model {input.model} --out {output.tokens} --threads {threads} > {log} 2>&1"


rule probe_semantic:
    input:
        tracks=TRACKS,
        volume=rules.corpus_table.output.volume,
        words=rules.corpus_table.output.words,
        model=rules.train_semantic.output.model,
        tokens=rules.semantic_tokens.output.tokens,
    output:
        metrics="results/semantic/metrics.json",
        quality="results/semantic/quality.csv",
    log:
        "logs/semantic/probe_semantic.log",
    benchmark:
        "benchmarks/semantic/probe_semantic.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "semantic"),
    shell:
        "python -m musicot.semantic.probe --config {params.cfg:q} --tracks {input.tracks} "
        "--model {input.model} --tokens {input.tokens} --metrics {output.metrics} "
        "--quality {output.quality} --threads {threads} > {log} 2>&1"
