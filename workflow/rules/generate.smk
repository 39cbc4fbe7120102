# Generation on the evaluation prompts: the conditions once (CLAP text embedding, Eq. 5 tags, lyrics),
# then every system of Table 1 from them (generate.systems: data, not code branches), and the
# referencing-vs-continuation copying test. The wildcard is `gen_system`: `system` names the two LMs.


rule generate_conditions:
    input:
        prompts=prompts_file(),
        clap=rules.train_clap.output.model,
        selection=rules.clap_tags.output.selection,
    output:
        directory("results/generate/conditions"),
    log:
        "logs/generate/conditions.log",
    benchmark:
        "benchmarks/generate/conditions.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 1
    params:
        cfg=config_arg("generate.max_prompts", "generate.max_tags"),
        clap=subpath(input.clap, parent=True),
    shell:
        "OMP_NUM_THREADS={threads} python -m musicot.generate.conditions --config {params.cfg:q} "
        "--prompts {input.prompts} --clap {params.clap} --selection {input.selection} --out {output} > {log} 2>&1"


rule generate:
    input:
        conditions=rules.generate_conditions.output[0],
        lm=system_lm,
        dit=rules.train_dit.output.model,
        vae=rules.train_vae.output.model,
    output:
        songs=directory("results/generate/{gen_system}"),
    log:
        "logs/generate/{gen_system}.log",
    benchmark:
        "benchmarks/generate/{gen_system}.tsv"
    conda:
        "../../envs/acoustic.yaml"
    # One thread: the tiny LM and DiT gain little from a second, which the next system's job can use.
    threads: 1
    params:
        cfg=config_arg(
            "seed",
            "generate",
            "lm.sample",
            "lm.max_audio_s",
            "lm.max_lyric_tokens",
            "clap.window_s",
            "semantic.hop_ms",
            "semantic.stack",
            "acoustic",
        ),
        lm=subpath(input.lm, parent=True),
    shell:
        "OMP_NUM_THREADS={threads} python -m musicot.generate.run --config {params.cfg:q} "
        "--system {wildcards.gen_system} --conditions {input.conditions} --lm {params.lm} --dit {input.dit} "
        "--vae {input.vae} --out {output.songs} > {log} 2>&1"


rule copying:
    input:
        lm="results/lm/musicot/model/model.safetensors",
        songs=rules.lm_data.output.songs,
        embeddings=rules.embed_clap.output.windows_npy,
    output:
        summary="results/metrics/copying.csv",
        songs="results/metrics/copying_songs.csv",
    log:
        "logs/generate/copying.log",
    benchmark:
        "benchmarks/generate/copying.tsv"
    conda:
        "../../envs/lm.yaml"
    threads: 1
    params:
        cfg=config_arg(
            "seed",
            "generate.copy",
            "lm.sample",
            "semantic.hop_ms",
            "semantic.stack",
        ),
        lm=subpath(input.lm, parent=True),
        data=subpath(input.songs, parent=True),
    shell:
        "python -m musicot.generate.copying --config {params.cfg:q} --lm {params.lm} --data {params.data} "
        "--embeddings {input.embeddings} --out {output.summary} --threads {threads} > {log} 2>&1"
