# The semantic LM: a WordPiece text tokenizer, one song table both systems train on, the two LMs
# (`musicot` with the thought, `base` without), the true-vs-shuffled-thought NLL, loss curves and the
# sampler benchmark. Training state lives in results/lm/<system>/state (params, never output).

LM_SYSTEMS = ["musicot", "base"]


wildcard_constraints:
    system="|".join(LM_SYSTEMS),


rule lm_tokenizer:
    input:
        tracks=TRACKS,
        lyrics="results/prep/lyrics.parquet",
    output:
        "results/lm/tokenizer/tokenizer.json",
    log:
        "logs/lm/lm_tokenizer.log",
    benchmark:
        "benchmarks/lm/lm_tokenizer.tsv"
    conda:
        "../../envs/lm.yaml"
    params:
        cfg=config_arg("lm.tokenizer"),
        out=subpath(output[0], parent=True),
    shell:
        "python -m musicot.lm.text --config {params.cfg:q} --tracks {input.tracks} --lyrics {input.lyrics} "
        "--out {params.out} > {log} 2>&1"


rule lm_data:
    input:
        tracks=TRACKS,
        tags="results/prep/tags.parquet",
        clap_tags=rules.clap_tags.output.tags,
        lyrics="results/prep/lyrics.parquet",
        structure="results/prep/structure.parquet",
        prep_rejected="results/prep/rejected.tsv",
        windows=rules.embed_clap.output.windows,
        codes=rules.train_rvq.output.codes,
        rvq_spec=rules.train_rvq.output.spec,
        tokens=SEMANTIC_TOKENS,
        tokenizer=rules.lm_tokenizer.output[0],
    output:
        songs="results/lm/data/songs.parquet",
        vocab="results/lm/data/vocab.json",
        rejected="results/lm/data/rejected.tsv",
    log:
        "logs/lm/lm_data.log",
    benchmark:
        "benchmarks/lm/lm_data.tsv"
    conda:
        "../../envs/lm.yaml"
    params:
        cfg=config_arg("lm.max_lyric_tokens", "semantic.n_tokens"),
        rvq=subpath(input.rvq_spec, parent=True),
        tokenizer=subpath(input.tokenizer, parent=True),
        out=subpath(output.songs, parent=True),
    shell:
        "python -m musicot.lm.data --config {params.cfg:q} --tracks {input.tracks} --tags {input.tags} "
        "--clap-tags {input.clap_tags} --lyrics {input.lyrics} --structure {input.structure} "
        "--prep-rejected {input.prep_rejected} --windows {input.windows} --codes {input.codes} "
        "--rvq {params.rvq} --tokens {input.tokens} --tokenizer {params.tokenizer} --out {params.out} > {log} 2>&1"


rule train_lm:
    input:
        songs=rules.lm_data.output.songs,
        vocab=rules.lm_data.output.vocab,
        embeddings=rules.embed_clap.output.windows_npy,
        tokenizer=rules.lm_tokenizer.output[0],
    output:
        model="results/lm/{system}/model/model.safetensors",
        metrics="results/lm/{system}/model/metrics.json",
    log:
        "logs/lm/train_lm_{system}.log",
    benchmark:
        "benchmarks/lm/train_lm_{system}.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 1
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg(
            "seed",
            "lm.model",
            "lm.max_audio_s",
            "lm.dropout",
            "lm.train",
            "semantic.hop_ms",
            "semantic.stack",
        ),
        data=subpath(input.songs, parent=True),
        tokenizer=subpath(input.tokenizer, parent=True),
        out=subpath(output.model, parent=True),
        state="results/lm/{system}/state",
    shell:
        "OMP_NUM_THREADS={threads} {params.launch} musicot.lm.train --config {params.cfg:q} "
        "--system {wildcards.system} "
        "--data {params.data} --embeddings {input.embeddings} --tokenizer {params.tokenizer} "
        "--out {params.out} --state {params.state} --threads {threads} > {log} 2>&1"


rule lm_nll:
    input:
        songs=rules.lm_data.output.songs,
        embeddings=rules.embed_clap.output.windows_npy,
        musicot="results/lm/musicot/model/model.safetensors",
        base="results/lm/base/model/model.safetensors",
    output:
        csv="results/lm/nll.csv",
        per_song="results/lm/nll.parquet",
    log:
        "logs/lm/lm_nll.log",
    benchmark:
        "benchmarks/lm/lm_nll.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 2
    params:
        cfg=config_arg(
            "seed",
            "lm.max_audio_s",
            "lm.eval",
            "lm.train",
            "semantic.hop_ms",
            "semantic.stack",
        ),
        data=subpath(input.songs, parent=True),
        musicot=subpath(input.musicot, parent=True),
        base=subpath(input.base, parent=True),
    shell:
        "python -m musicot.lm.evaluate --config {params.cfg:q} --data {params.data} --embeddings {input.embeddings} "
        "--musicot {params.musicot} --base {params.base} --out {output.csv} --threads {threads} > {log} 2>&1"


rule lm_loss_figure:
    input:
        rules.train_lm.output.metrics,
    output:
        pdf="results/figures/lm_loss_{system}.pdf",
        png=report(
            "results/figures/lm_loss_{system}.png",
            caption="../report/lm_loss.rst",
            category="Figures",
        ),
    log:
        "logs/lm/lm_loss_figure_{system}.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m musicot.report.loss_curve --metrics {input} --title 'semantic LM: {wildcards.system}' "
        "--out {output.pdf} {output.png} > {log} 2>&1"


rule bench_sampler:
    input:
        model="results/lm/musicot/model/model.safetensors",
        embeddings=rules.embed_clap.output.windows_npy,
    output:
        csv="results/benchmarks/lm_sampler.csv",
        md="results/benchmarks/lm_sampler.md",
    log:
        "logs/lm/bench_sampler.log",
    conda:
        "../../envs/lm.yaml"
    # Claims both cores so that no other job runs beside it and skews the timing; torch itself uses
    # one thread, the steadiest setting for a model this small. The naive sampler runs one prompt at a
    # time by definition, so it is timed at batch 1 only (its rate does not depend on the batch).
    threads: 2
    params:
        cfg=config_arg("seed", "lm.sample", "semantic.hop_ms", "semantic.stack"),
        model=subpath(input.model, parent=True),
    shell:
        "python -m musicot.lm.bench --config {params.cfg:q} --model {params.model} --embeddings {input.embeddings} "
        "--out {output.csv} --threads 1 --no-naive-batch > {log} 2>&1"
