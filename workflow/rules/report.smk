# Tables (csv + md + tex) and figures (pdf + png) of the paper, each its own target.


rule tables:
    input:
        corpus="results/corpus/summary.csv",
        prep="results/prep/quality.csv",
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
    shell:
        "python -m musicot.report.tables --corpus-summary {input.corpus} --prep-quality {input.prep} "
        "--out {output} > {log} 2>&1"
