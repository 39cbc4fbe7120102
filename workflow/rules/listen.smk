# Listening: the generated-samples pages, the blinded MOS kit, and MOS from whatever ratings files exist.
# The kit's key (sample id -> system) is written beside the kit folder, never into it: raters get the folder.


rule samples_pages:
    input:
        prompts=prompts_file(),
        conditions=rules.generate_conditions.output[0],
        songs=expand("results/generate/{gen_system}", gen_system=GEN_SYSTEMS),
        rvq=rules.train_rvq.output.model,
        text=rules.embed_clap.output.text,
        text_npy=rules.embed_clap.output.text_npy,
        lm_data=rules.lm_data.output.songs,
        copying=rules.copying.output.songs,
        tracks=TRACKS,
    output:
        directory("results/pages"),
    log:
        "logs/listen/samples_pages.log",
    benchmark:
        "benchmarks/listen/samples_pages.tsv"
    conda:
        "../../envs/clap.yaml"
    params:
        cfg=config_arg("listen.samples", "analysis.anchors", "clap.window_s"),
        rvq=subpath(input.rvq, parent=True),
        embeddings=subpath(input.text, parent=True),
        lm_data=subpath(input.lm_data, parent=True),
        mos_link="../listening/mos/index.html",
    shell:
        "python -m musicot.listen.samples --config {params.cfg:q} --prompts {input.prompts} "
        "--conditions {input.conditions} --systems {input.songs} --rvq {params.rvq} "
        "--clap-embeddings {params.embeddings} --lm-data {params.lm_data} --copying {input.copying} "
        "--tracks {input.tracks} --mos-link {params.mos_link} --out {output} > {log} 2>&1"


rule mos_kit:
    input:
        conditions=rules.generate_conditions.output[0],
        songs=mos_kit_systems,
    output:
        kit=directory("results/listening/mos"),
        key="results/listening/mos_key.json",
    log:
        "logs/listen/mos_kit.log",
    benchmark:
        "benchmarks/listen/mos_kit.tsv"
    conda:
        "../../envs/clap.yaml"
    params:
        cfg=config_arg("seed", "listen.mos"),
    shell:
        "python -m musicot.listen.kit --config {params.cfg:q} --conditions {input.conditions} "
        "--systems {input.songs} --out {output.kit} --key {output.key} > {log} 2>&1"


rule mos:
    input:
        key=rules.mos_kit.output.key,
        ratings=mos_ratings_files,
    output:
        mos="results/metrics/mos.csv",
        ratings="results/metrics/mos_ratings.csv",
        rejected="results/metrics/mos_rejected.tsv",
    log:
        "logs/listen/mos.log",
    benchmark:
        "benchmarks/listen/mos.tsv"
    conda:
        "../../envs/clap.yaml"
    params:
        confidence=config["listen"]["mos"]["confidence"],
    shell:
        "python -m musicot.listen.ratings --key {input.key} --ratings {input.ratings} "
        "--confidence {params.confidence} --out {output.mos} > {log} 2>&1"
