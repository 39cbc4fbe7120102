# RVQ: the tokenizer of the musical thought, trained on the train split's CLAP window embeddings;
# writes every window's codes. Training state lives in results/rvq/state (params, never output).


rule train_rvq:
    input:
        embeddings=rules.embed_clap.output.windows_npy,
        windows=rules.embed_clap.output.windows,
    output:
        model="results/rvq/model.safetensors",
        spec="results/rvq/config.json",
        metrics="results/rvq/metrics.json",
        codes="results/rvq/codes.parquet",
    log:
        "logs/rvq/train_rvq.log",
    benchmark:
        "benchmarks/rvq/train_rvq.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 1
    params:
        cfg=config_arg("seed", "rvq"),
        out=subpath(output.model, parent=True),
        state="results/rvq/state",
    shell:
        "python -m musicot.rvq.train --config {params.cfg:q} --embeddings {input.embeddings} "
        "--windows {input.windows} --out {params.out} --state {params.state} --threads {threads} > {log} 2>&1"
