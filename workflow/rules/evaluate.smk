# Table 1's metrics and the generated songs' analyzability: the FAD reference embedded once, each
# system's songs scored (FAD with CI and FAD-infinity, Audiobox-Aesthetics, RTF) and the paper's orderings
# tested with paired CIs, in one job; the analysed system's songs separated and read against their thought.


rule evaluate:
    input:
        songs=expand("results/generate/{gen_system}", gen_system=GEN_SYSTEMS),
        tracks=TRACKS,
        clap=rules.train_clap.output.model,
        paper=PAPER_TABLE1,
    output:
        metrics=expand("results/metrics/{gen_system}.json", gen_system=GEN_SYSTEMS),
        windows=directory(
            expand("results/metrics/{gen_system}", gen_system=GEN_SYSTEMS)
        ),
        reference=directory("results/metrics/reference"),
        comparisons="results/metrics/comparisons.csv",
    log:
        "logs/evaluate/evaluate.log",
    benchmark:
        "benchmarks/evaluate/evaluate.tsv"
    conda:
        "../../envs/clap.yaml"
    # One job for every system: loading our CLAP costs ~15 s per process, the scoring a few seconds per system.
    threads: 1
    params:
        cfg=config_arg("seed", "evaluate", "lm.sample.duration_s"),
        clap=subpath(input.clap, parent=True),
        out=lambda wildcards, output: str(Path(output.comparisons).parent),
    shell:
        "python -m musicot.metrics.evaluate --config {params.cfg:q} --tracks {input.tracks} --clap {params.clap} "
        "--systems {input.songs} --paper {input.paper} --out {params.out} --threads {threads} > {log} 2>&1"


rule generated_analyzability:
    input:
        songs=f"results/generate/{config['evaluate']['analyze_system']}",
        separator=separator_model,
        rvq=rules.train_rvq.output.model,
        text=rules.embed_clap.output.text,
        text_npy=rules.embed_clap.output.text_npy,
        tracks=TRACKS,
    output:
        table="results/metrics/analyzability.csv",
        windows="results/metrics/analyzability_windows.parquet",
        volume="results/metrics/generated_volume.parquet",
        frames="results/metrics/thought_frames.parquet",
        mono="results/metrics/separator_mono.csv",
        rejected="results/metrics/analyzability_rejected.tsv",
    log:
        "logs/evaluate/generated_analyzability.log",
    benchmark:
        "benchmarks/evaluate/generated_analyzability.tsv"
    conda:
        "../../envs/prep.yaml"
    threads: 1
    params:
        cfg=config_arg(
            "seed",
            "analysis",
            "evaluate",
            "clap.window_s",
            "corpus.volume_hop_s",
            "prep.separation",
        ),
        rvq=subpath(input.rvq, parent=True),
        embeddings=subpath(input.text, parent=True),
        out=subpath(output.table, parent=True),
    shell:
        "python -m musicot.metrics.analyzability --config {params.cfg:q} --songs {input.songs} "
        "--separator {input.separator} --rvq {params.rvq} --clap-embeddings {params.embeddings} "
        "--tracks {input.tracks} --out {params.out} --threads {threads} > {log} 2>&1"
