# Tables (csv + md + tex) and figures (pdf + png) of the paper, each its own target.


rule tables:
    input:
        corpus="results/corpus/summary.csv",
        prep="results/prep/quality.csv",
        clap=rules.embed_clap.output.quality,
        clap_tags=rules.clap_tags.output.quality,
        clap_train=rules.train_clap.output.metrics,
        rvq=rules.train_rvq.output.metrics,
        analyzability=rules.thought_analyzability.output.table,
        shifted=rules.thought_shifted.output.table,
        shifted_corpus=rules.shifted_corpus.output.differences,
        shifted_by_property=rules.thought_shifted.output.by_property,
        semantic="results/semantic/quality.csv",
        lm=expand("results/lm/{system}/model/metrics.json", system=LM_SYSTEMS),
        nll=rules.lm_nll.output.csv,
        sampler="results/benchmarks/lm_sampler.csv",
        acoustic=rules.acoustic_eval.output.quality,
        acoustic_metrics=rules.acoustic_eval.output.metrics,
        acoustic_models=["results/acoustic/vae", "results/acoustic/dit"],
        system_metrics=expand(
            "results/metrics/{gen_system}.json", gen_system=GEN_SYSTEMS
        ),
        comparisons=rules.evaluate.output.comparisons,
        paper_table1=PAPER_TABLE1,
        generated_analyzability=generated_analyzability_table,
        copying=rules.copying.output.summary,
        mos=rules.mos.output.mos,
    output:
        report(
            directory("results/tables"),
            patterns=["{name}.csv"],
            caption="../report/tables.rst",
            category="Tables",
            labels={"table": "{name}"},
        ),
    log:
        "logs/report/tables.log",
    benchmark:
        "benchmarks/report/tables.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        absent=absent_arg(),
        acoustic_models=[
            f"{d}/metrics.json"
            for d in ("results/acoustic/vae", "results/acoustic/dit")
        ],
        generated=generated_tables_args,
    shell:
        "python -m musicot.report.tables --corpus-summary {input.corpus} --prep-quality {input.prep} "
        "--clap-quality {input.clap} {input.clap_tags} --clap-train {input.clap_train} --rvq-metrics {input.rvq} "
        "--analyzability {input.analyzability} --shifted {input.shifted} --shifted-corpus {input.shifted_corpus} --shifted-by-property {input.shifted_by_property} --semantic-quality {input.semantic} --lm-metrics {input.lm} "
        "--lm-nll {input.nll} --sampler-bench {input.sampler} --acoustic-quality {input.acoustic} "
        "--acoustic-metrics {input.acoustic_metrics} --acoustic-models {params.acoustic_models} --absent {params.absent:q} {params.generated} --out {output} > {log} 2>&1"


rule generated_timeline:
    input:
        windows=rules.generated_analyzability.output.windows,
        volume=rules.generated_analyzability.output.volume,
        frames=rules.generated_analyzability.output.frames,
        songs=f"results/generate/{config['evaluate']['analyze_system']}",
    output:
        pdf="results/figures/generated_timeline.pdf",
        png=report(
            "results/figures/generated_timeline.png",
            caption="../report/generated_timeline.rst",
            category="Figures",
        ),
    log:
        "logs/report/generated_timeline.log",
    benchmark:
        "benchmarks/report/generated_timeline.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        prompts=" ".join(config["evaluate"]["timeline_prompts"]),
        flag="--prompts" if config["evaluate"]["timeline_prompts"] else "",
        window=config["clap"]["window_s"],
    shell:
        "python -m musicot.report.generated_timeline --windows {input.windows} --volume {input.volume} "
        "--thoughts {input.songs}/thoughts.parquet --frame-sims {input.frames} {params.flag} {params.prompts} "
        "--window-s {params.window} --out {output.pdf} {output.png} > {log} 2>&1"


rule generated_scatter:
    input:
        windows=rules.generated_analyzability.output.windows,
        table=rules.generated_analyzability.output.table,
    output:
        pdf="results/figures/generated_scatter.pdf",
        png=report(
            "results/figures/generated_scatter.png",
            caption="../report/generated_scatter.rst",
            category="Figures",
        ),
    log:
        "logs/report/generated_scatter.log",
    benchmark:
        "benchmarks/report/generated_scatter.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        min_songs=config["evaluate"]["min_songs"],
    shell:
        "python -m musicot.report.generated_scatter --windows {input.windows} --table {input.table} "
        "--min-songs {params.min_songs} --out {output.pdf} {output.png} > {log} 2>&1"


rule thought_layout:
    input:
        songs=f"results/generate/{config['evaluate']['analyze_system']}",
    output:
        pdf="results/figures/thought_layout.pdf",
        png=report(
            "results/figures/thought_layout.png",
            caption="../report/thought_layout.rst",
            category="Figures",
        ),
    log:
        "logs/report/thought_layout.log",
    benchmark:
        "benchmarks/report/thought_layout.tsv"
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m musicot.report.thought_layout --thoughts {input.songs}/thoughts.parquet "
        "--out {output.pdf} {output.png} > {log} 2>&1"


rule rtf_breakdown:
    input:
        songs=expand("results/generate/{gen_system}", gen_system=GEN_SYSTEMS),
    output:
        pdf="results/figures/rtf_breakdown.pdf",
        png=report(
            "results/figures/rtf_breakdown.png",
            caption="../report/rtf_breakdown.rst",
            category="Figures",
        ),
    log:
        "logs/report/rtf_breakdown.log",
    benchmark:
        "benchmarks/report/rtf_breakdown.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        files=lambda wildcards, input: " ".join(
            f"{s}/generation.json" for s in input.songs
        ),
    shell:
        "python -m musicot.report.rtf_breakdown --generation {params.files} --out {output.pdf} {output.png} > {log} 2>&1"


rule training_curves:
    input:
        unpack(trained_model_metrics),
    output:
        pdf="results/figures/training_curves.pdf",
        png=report(
            "results/figures/training_curves.png",
            caption="../report/training_curves.rst",
            category="Figures",
        ),
    log:
        "logs/report/training_curves.log",
    benchmark:
        "benchmarks/report/training_curves.tsv"
    conda:
        "../../envs/report.yaml"
    params:
        models=training_curve_args,
    shell:
        "python -m musicot.report.training_curves --model {params.models} --out {output.pdf} {output.png} > {log} 2>&1"
