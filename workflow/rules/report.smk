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
        semantic="results/semantic/quality.csv",
        lm=expand("results/lm/{system}/model/metrics.json", system=LM_SYSTEMS),
        nll=rules.lm_nll.output.csv,
        sampler="results/benchmarks/lm_sampler.csv",
        acoustic=rules.acoustic_eval.output.quality,
        acoustic_metrics=rules.acoustic_eval.output.metrics,
        acoustic_models=["results/acoustic/vae", "results/acoustic/dit"],
    output:
        report(
            directory("results/tables"),
            patterns=["{name}.csv"],
            caption="../report/corpus.rst",
            category="Tables",
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
    shell:
        "python -m musicot.report.tables --corpus-summary {input.corpus} --prep-quality {input.prep} "
        "--clap-quality {input.clap} {input.clap_tags} --clap-train {input.clap_train} --rvq-metrics {input.rvq} "
        "--analyzability {input.analyzability} --semantic-quality {input.semantic} --lm-metrics {input.lm} "
        "--lm-nll {input.nll} --sampler-bench {input.sampler} --acoustic-quality {input.acoustic} "
        "--acoustic-metrics {input.acoustic_metrics} --acoustic-models {params.acoustic_models} --absent {params.absent:q} --out {output} > {log} 2>&1"
