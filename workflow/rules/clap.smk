# CLAP: trained on 10 s corpus windows captioned from their stem truth (and on the train songs
# re-rendered with other instruments, rule clap_timbres), then every window and the
# anchor/tag/caption texts embedded. Training state lives in results/clap/state (params, never output).


rule clap_timbres:
    input:
        needs(P.CLAP),
        tracks=TRACKS,
        volume="results/corpus/stem_volume.parquet",
    output:
        tracks="results/timbres/tracks.parquet",
        volume="results/timbres/stem_volume.parquet",
        variants="results/timbres/variants.parquet",
    log:
        "logs/clap/clap_timbres.log",
    benchmark:
        "benchmarks/clap/clap_timbres.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 2
    params:
        cfg=config_arg(
            "seed",
            "corpus.synth",
            "corpus.volume_hop_s",
            "clap.preset",
            "clap.window_s",
            "clap.timbres",
            "analysis.shifted.programs",
            "analysis.shifted.drum_kits",
        ),
        out=subpath(output.tracks, parent=True),
    shell:
        "python -m musicot.clap.timbres --config {params.cfg:q} --tracks {input.tracks} "
        "--out {params.out} --threads {threads} > {log} 2>&1"


rule train_clap:
    input:
        needs(P.CLAP),
        tracks=TRACKS,
        timbres=rules.clap_timbres.output.tracks,
        timbre_volume=rules.clap_timbres.output.volume,
    output:
        model="results/clap/model/model.pt",
        spec="results/clap/model/config.json",
        metrics="results/clap/model/metrics.json",
    log:
        "logs/clap/train_clap.log",
    benchmark:
        "benchmarks/clap/train_clap.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 2
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg("seed", "clap"),
        out=subpath(output.model, parent=True),
        state="results/clap/state",
    shell:
        "{params.launch} musicot.clap.train train --config {params.cfg:q} --tracks {input.tracks} "
        "--timbres {input.timbres} --out {params.out} --state-dir {params.state} --threads {threads} > {log} 2>&1"


rule embed_clap:
    input:
        tracks=TRACKS,
        model=rules.train_clap.output.model,
        spec=rules.train_clap.output.spec,
    output:
        windows="results/clap/embeddings/windows.parquet",
        windows_npy="results/clap/embeddings/windows.npy",
        text="results/clap/embeddings/text.parquet",
        text_npy="results/clap/embeddings/text.npy",
        metrics="results/clap/embeddings/metrics.json",
        quality=report(
            "results/clap/embeddings/quality.csv",
            caption="../report/clap_quality.rst",
            category="CLAP and RVQ",
        ),
    log:
        "logs/clap/embed_clap.log",
    benchmark:
        "benchmarks/clap/embed_clap.tsv"
    conda:
        "../../envs/clap.yaml"
    threads: 2
    params:
        cfg=config_arg("seed", "clap"),
        model=subpath(input.model, parent=True),
        out=subpath(output.windows, parent=True),
    shell:
        "python -m musicot.clap.train embed --config {params.cfg:q} --tracks {input.tracks} "
        "--model {params.model} --out {params.out} --threads {threads} > {log} 2>&1"


rule clap_tags:
    input:
        tracks=TRACKS,
        prep_tags="results/prep/tags.parquet",
        windows=rules.embed_clap.output.windows,
        windows_npy=rules.embed_clap.output.windows_npy,
        text=rules.embed_clap.output.text,
        text_npy=rules.embed_clap.output.text_npy,
        model=rules.train_clap.output.model,
    output:
        tags="results/clap/tags.parquet",
        quality="results/clap/tags_quality.csv",
        selection="results/clap/tag_selection.json",
    log:
        "logs/clap/clap_tags.log",
    benchmark:
        "benchmarks/clap/clap_tags.tsv"
    conda:
        "../../envs/clap.yaml"
    params:
        cfg=config_arg("tag_selection"),
        embeddings=subpath(input.windows, parent=True),
        model=subpath(input.model, parent=True),
    shell:
        "python -m musicot.clap.tags --config {params.cfg:q} --tracks {input.tracks} "
        "--prep-tags {input.prep_tags} --embeddings {params.embeddings} --model {params.model} "
        "--out {output.tags} --quality {output.quality} --selection {output.selection} > {log} 2>&1"
