# Analyzability of the musical thought (paper section 5.3) on the held-out songs, and its timeline.


rule thought_analyzability:
    input:
        tracks=TRACKS,
        volume="results/corpus/stem_volume.parquet",
        windows=rules.embed_clap.output.windows,
        windows_npy=rules.embed_clap.output.windows_npy,
        text=rules.embed_clap.output.text,
        text_npy=rules.embed_clap.output.text_npy,
        rvq=rules.train_rvq.output.model,
        rvq_spec=rules.train_rvq.output.spec,
        codes=rules.train_rvq.output.codes,
        stems=separated_stems("analysis"),
    output:
        table=report(
            "results/analysis/thought_analyzability.csv",
            caption="../report/thought_analyzability.rst",
            category="Analyzability",
        ),
        windows="results/analysis/thought_windows.parquet",
    log:
        "logs/analysis/thought_analyzability.log",
    benchmark:
        "benchmarks/analysis/thought_analyzability.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 1
    params:
        cfg=config_arg("analysis"),
        embeddings=subpath(input.windows, parent=True),
        rvq=subpath(input.rvq, parent=True),
        stems=stems_arg,
    shell:
        "python -m musicot.analysis.thought --config {params.cfg:q} --tracks {input.tracks} "
        "--embeddings {params.embeddings} --rvq {params.rvq} {params.stems} "
        "--out {output.table} --windows-out {output.windows} --threads {threads} > {log} 2>&1"


rule thought_timeline:
    input:
        windows=rules.thought_analyzability.output.windows,
    output:
        pdf="results/figures/thought_timeline.pdf",
        png=report(
            "results/figures/thought_timeline.png",
            caption="../report/thought_timeline.rst",
            category="Figures",
        ),
    log:
        "logs/analysis/thought_timeline.log",
    benchmark:
        "benchmarks/analysis/thought_timeline.tsv"
    conda:
        "../../envs/clap.yaml"
    params:
        cfg=config_arg("analysis"),
    shell:
        "python -m musicot.analysis.timeline --config {params.cfg:q} --windows {input.windows} "
        "--out {output.pdf} {output.png} > {log} 2>&1"


# The shifted corpus: songs made differently from the training corpus (other programs, kits, SoundFont,
# balance, modes, tempos), never trained on; the thought's analyzability on it with its truth stems.
rule shifted_corpus:
    input:
        tracks=TRACKS,
        volume="results/corpus/stem_volume.parquet",
    output:
        tracks="results/shifted/tracks.parquet",
        volume="results/shifted/stem_volume.parquet",
        songs="results/shifted/songs.parquet",
        differences="results/shifted/differences.csv",
    log:
        "logs/analysis/shifted_corpus.log",
    benchmark:
        "benchmarks/analysis/shifted_corpus.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        cfg=config_arg("seed", "corpus", "analysis", "clap"),
        out=subpath(output.tracks, parent=True),
    shell:
        "python -m musicot.data.shifted --config {params.cfg:q} --training-tracks {input.tracks} "
        "--out {params.out} > {log} 2>&1"


rule thought_shifted:
    input:
        tracks=rules.shifted_corpus.output.tracks,
        volume=rules.shifted_corpus.output.volume,
        songs=rules.shifted_corpus.output.songs,
        model=rules.train_clap.output.model,
        spec=rules.train_clap.output.spec,
        text=rules.embed_clap.output.text,
        text_npy=rules.embed_clap.output.text_npy,
        rvq=rules.train_rvq.output.model,
        rvq_spec=rules.train_rvq.output.spec,
    output:
        table=report(
            "results/analysis/thought_shifted.csv",
            caption="../report/thought_shifted.rst",
            category="Analyzability",
        ),
        windows="results/analysis/thought_shifted_windows.parquet",
        by_property="results/analysis/thought_shifted_by_property.csv",
    log:
        "logs/analysis/thought_shifted.log",
    benchmark:
        "benchmarks/analysis/thought_shifted.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 1
    params:
        cfg=config_arg("analysis", "clap"),
        clap=subpath(input.model, parent=True),
        embeddings=subpath(input.text, parent=True),
        rvq=subpath(input.rvq, parent=True),
    shell:
        "python -m musicot.analysis.shifted --config {params.cfg:q} --tracks {input.tracks} "
        "--clap {params.clap} --embeddings {params.embeddings} --rvq {params.rvq} "
        "--out {output.table} --windows-out {output.windows} --by-property-out {output.by_property} "
        "--threads {threads} > {log} 2>&1"
