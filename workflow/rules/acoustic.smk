# The acoustic stage: the VAE-GAN, every song pre-encoded once into the DiT's frame space, the latent DiT
# conditioned on semantic tokens, the chain measured on validation songs, and its figures. Training
# state lives in results/acoustic/state (params, never output).


rule train_vae:
    input:
        tracks=TRACKS,
    output:
        model=directory("results/acoustic/vae"),
    log:
        "logs/acoustic/train_vae.log",
    benchmark:
        "benchmarks/acoustic/train_vae.tsv"
    conda:
        "../../envs/acoustic.yaml"
    # One thread: a small convolutional model gains little from a second one, which another job can use.
    threads: 1
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg("seed", "acoustic"),
        state="results/acoustic/state/vae",
    shell:
        "{params.launch} musicot.acoustic.train_vae --config {params.cfg:q} --tracks {input.tracks} "
        "--out {output.model} --state {params.state} --threads {threads} > {log} 2>&1"


rule encode_latents:
    input:
        tracks=TRACKS,
        vae=rules.train_vae.output.model,
    output:
        latents=directory("results/acoustic/latents"),
    log:
        "logs/acoustic/encode_latents.log",
    benchmark:
        "benchmarks/acoustic/encode_latents.tsv"
    conda:
        "../../envs/acoustic.yaml"
    threads: 1
    params:
        cfg=config_arg("seed", "acoustic"),
    shell:
        "python -m musicot.acoustic.latents --config {params.cfg:q} --tracks {input.tracks} --vae {input.vae} "
        "--out {output.latents} --threads {threads} > {log} 2>&1"


rule train_dit:
    input:
        tracks=TRACKS,
        latents=rules.encode_latents.output.latents,
        tokens=SEMANTIC_TOKENS,
        windows=rules.embed_clap.output.windows,
        windows_npy=rules.embed_clap.output.windows_npy,
    output:
        model=directory("results/acoustic/dit"),
    log:
        "logs/acoustic/train_dit.log",
    benchmark:
        "benchmarks/acoustic/train_dit.tsv"
    conda:
        "../../envs/acoustic.yaml"
    # One thread: measured 0.18 s per step beside another job, against ~1 s with two threads fighting it.
    threads: 1
    resources:
        gpu=0,
        nodes=1,
    params:
        launch=train_launch,
        cfg=config_arg("seed", "acoustic", "semantic"),
        clap=subpath(input.windows, parent=True),
        state="results/acoustic/state/dit",
    shell:
        "{params.launch} musicot.acoustic.train_dit --config {params.cfg:q} --tracks {input.tracks} "
        "--latents {input.latents} --tokens {input.tokens} --clap {params.clap} --out {output.model} "
        "--state {params.state} --threads {threads} > {log} 2>&1"


rule acoustic_eval:
    input:
        tracks=TRACKS,
        vae=rules.train_vae.output.model,
        dit=rules.train_dit.output.model,
        tokens=SEMANTIC_TOKENS,
        clap_model=rules.train_clap.output.model,
    output:
        quality="results/acoustic/eval/quality.csv",
        metrics="results/acoustic/eval/metrics.json",
        examples=directory("results/acoustic/eval/examples"),
    log:
        "logs/acoustic/acoustic_eval.log",
    benchmark:
        "benchmarks/acoustic/acoustic_eval.tsv"
    conda:
        "../../envs/acoustic.yaml"
    # One thread: the DiT is small and Griffin-Lim, tempo and CLAP run one song at a time.
    threads: 1
    params:
        cfg=config_arg("seed", "acoustic", "clap"),
        clap_model=subpath(input.clap_model, parent=True),
        out=subpath(output.quality, parent=True),
    shell:
        "python -m musicot.acoustic.evaluate --config {params.cfg:q} --tracks {input.tracks} --vae {input.vae} "
        "--dit {input.dit} --tokens {input.tokens} --clap-model {params.clap_model} --out {params.out} --threads {threads} > {log} 2>&1"


rule acoustic_spectrograms:
    input:
        examples=rules.acoustic_eval.output.examples,
    output:
        pdf="results/figures/acoustic_spectrograms.pdf",
        png=report(
            "results/figures/acoustic_spectrograms.png",
            caption="../report/acoustic_spectrograms.rst",
            category="Figures",
        ),
        audio=expand(
            "results/figures/acoustic_spectrograms/{version}.flac",
            version=ACOUSTIC_EXAMPLES,
        ),
    log:
        "logs/acoustic/acoustic_spectrograms.log",
    conda:
        "../../envs/report.yaml"
    params:
        names=ACOUSTIC_EXAMPLES,
        folder=acoustic_example_folder,
    shell:
        "for v in {params.names}; do cp {input.examples}/$v.flac {params.folder}/; done && "
        "python -m musicot.report.spectrograms --audio {output.audio} "
        "--title 'one validation song through the acoustic chain' --out {output.pdf} {output.png} > {log} 2>&1"


rule acoustic_loss_figure:
    input:
        "results/acoustic/{model}",
    output:
        pdf="results/figures/acoustic_loss_{model}.pdf",
        png=report(
            "results/figures/acoustic_loss_{model}.png",
            caption="../report/acoustic_loss.rst",
            category="Figures",
        ),
    log:
        "logs/acoustic/acoustic_loss_figure_{model}.log",
    wildcard_constraints:
        model="vae|dit",
    conda:
        "../../envs/report.yaml"
    params:
        ylabel=acoustic_loss_label,
        title=acoustic_loss_title,
    shell:
        "python -m musicot.report.loss_curve --metrics {input}/metrics.json --title {params.title:q} "
        "--ylabel {params.ylabel:q} --out {output.pdf} {output.png} > {log} 2>&1"
