# Preprocessing as in the paper: separation, VAD, lyrics (ASR), structure, MIR tags.
# Each step writes its table, a quality CSV scored against the corpus truth and its rejections.


rule train_separator:
    input:
        needs(P.SEPARATOR),
        tracks=TRACKS,
    output:
        directory("results/prep/separator"),
    log:
        "logs/prep/train_separator.log",
    benchmark:
        "benchmarks/prep/train_separator.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 2
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg("seed", "prep"),
        state="results/prep/state/separator",
    shell:
        "{params.launch} musicot.prep.separate train --config {params.cfg:q} --tracks {input.tracks} "
        "--out {output} --state {params.state} --threads {threads} > {log} 2>&1"


rule separator_curve:
    input:
        "results/prep/separator",
    output:
        pdf="results/figures/separator_curve.pdf",
        png=report(
            "results/figures/separator_curve.png",
            caption="../report/separator_curve.rst",
            category="Figures",
        ),
    log:
        "logs/prep/separator_curve.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m musicot.report.separator_curve --metrics {input}/metrics.json "
        "--out {output.pdf} {output.png} > {log} 2>&1"


rule separate:
    input:
        tracks=TRACKS,
        model=separator_model,
    output:
        stems=directory("results/prep/stems"),
        rejected="results/prep/separation_rejected.tsv",
    log:
        "logs/prep/separate.log",
    benchmark:
        "benchmarks/prep/separate.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "prep"),
    shell:
        "python -m musicot.prep.separate apply --config {params.cfg:q} --model {input.model} "
        "--tracks {input.tracks} --out {output.stems} --rejected {output.rejected} "
        "--threads {threads} > {log} 2>&1"


rule score_separation:
    input:
        needs(P.SDR),
        tracks=TRACKS,
        stems="results/prep/stems",
    output:
        quality="results/prep/separation_quality.csv",
        per_song="results/prep/separation_sdr.csv",
    log:
        "logs/prep/score_separation.log",
    benchmark:
        "benchmarks/prep/score_separation.tsv"
    conda:
        "../../envs/prep.yaml"
    params:
        cfg=config_arg("seed", "prep"),
    shell:
        "python -m musicot.prep.separate score --config {params.cfg:q} --stems {input.stems} "
        "--tracks {input.tracks} --quality {output.quality} --per-song {output.per_song} > {log} 2>&1"


rule vad:
    input:
        needs(P.VAD),
        tracks=TRACKS,
        stems=separated_stems("vad"),
    output:
        table="results/prep/vad.parquet",
        quality="results/prep/vad_quality.csv",
        rejected="results/prep/vad_rejected.tsv",
    log:
        "logs/prep/vad.log",
    benchmark:
        "benchmarks/prep/vad.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "prep"),
        stems=stems_arg,
    shell:
        "python -m musicot.prep.vad --config {params.cfg:q} --tracks {input.tracks} {params.stems} "
        "--out {output.table} --quality {output.quality} --rejected {output.rejected} "
        "--threads {threads} > {log} 2>&1"


rule lyrics:
    input:
        tracks=TRACKS,
        stems=separated_stems("lyrics"),
    output:
        table="results/prep/lyrics.parquet",
        quality="results/prep/lyrics_quality.csv",
        rejected="results/prep/lyrics_rejected.tsv",
    log:
        "logs/prep/lyrics.log",
    benchmark:
        "benchmarks/prep/lyrics.tsv"
    conda:
        "../../envs/prep.yaml"
    params:
        cfg=config_arg("seed", "prep"),
        stems=stems_arg,
    shell:
        "python -m musicot.prep.lyrics --config {params.cfg:q} --tracks {input.tracks} {params.stems} "
        "--out {output.table} --quality {output.quality} --rejected {output.rejected} > {log} 2>&1"


rule structure:
    input:
        tracks=TRACKS,
    output:
        table="results/prep/structure.parquet",
        quality="results/prep/structure_quality.csv",
        rejected="results/prep/structure_rejected.tsv",
    log:
        "logs/prep/structure.log",
    benchmark:
        "benchmarks/prep/structure.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "prep"),
    shell:
        "python -m musicot.prep.structure --config {params.cfg:q} --tracks {input.tracks} "
        "--out {output.table} --quality {output.quality} --rejected {output.rejected} "
        "--workers {threads} > {log} 2>&1"


rule tags:
    input:
        tracks=TRACKS,
    output:
        table="results/prep/tags.parquet",
        quality="results/prep/tags_quality.csv",
        rejected="results/prep/tags_rejected.tsv",
    log:
        "logs/prep/tags.log",
    benchmark:
        "benchmarks/prep/tags.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "prep"),
    shell:
        "python -m musicot.prep.tags --config {params.cfg:q} --tracks {input.tracks} "
        "--out {output.table} --quality {output.quality} --rejected {output.rejected} "
        "--workers {threads} > {log} 2>&1"


rule prep_quality:
    input:
        quality=prep_outputs("quality"),
        rejected=prep_outputs("rejected"),
    output:
        quality=report(
            "results/prep/quality.csv",
            caption="../report/prep_quality.rst",
            category="Preprocessing",
        ),
        rejected="results/prep/rejected.tsv",
    log:
        "logs/prep/prep_quality.log",
    benchmark:
        "benchmarks/prep/prep_quality.tsv"
    conda:
        "../../envs/prep.yaml"
    shell:
        "python -m musicot.prep.quality --quality {input.quality} --rejected {input.rejected} "
        "--out {output.quality} --out-rejected {output.rejected} > {log} 2>&1"
