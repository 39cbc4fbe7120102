"""Print the parameter counts of a config's trained-here models without training or allocating them.

    python -m musicot.sizes --config workflow/presets/paper.yaml

Builds the semantic LM (Llama + CLAP prefix), the BEST-RQ encoder, the VAE-GAN and the DiT on torch's meta device, so
the paper preset's ~1B LM is counted in a second on a laptop. Vocabulary sizes come from the
config (the text tokenizer's size is its configured upper bound).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from musicot.clap.model import preset_spec
from musicot.config import load_config
from musicot.lm.model import MusicLM, size_from_config
from musicot.lm.vocab import Vocab
from musicot.semantic.config import SemanticConfig
from musicot.semantic.model import BestRq, parameter_count


def model_sizes(config: dict) -> dict[str, int]:
    """{model: parameters} of the LM (with thought; the base LM is the same size) and the BEST-RQ encoder."""
    lm, rvq, semantic = config["lm"], config["rvq"], SemanticConfig.from_config(config)
    clap_dim = int(preset_spec(config["clap"]["preset"]).model_config["joint_embed_shape"])  # the prefix's input
    vocab = Vocab(lm["tokenizer"]["vocab_size"], rvq["levels"], rvq["codebook_size"], semantic.n_tokens)
    with torch.device("meta"):
        llm = MusicLM.build(size_from_config(lm["model"]), vocab, clap_dim)
        best_rq = BestRq(semantic.model, semantic.features, semantic.ssl)
    sizes = {"semantic LM (Llama + CLAP prefix)": llm.n_params(), "BEST-RQ encoder": parameter_count(best_rq.encoder)}
    return sizes | acoustic_sizes(config, semantic.n_tokens, clap_dim)


def acoustic_sizes(config: dict, n_tokens: int, clap_dim: int) -> dict[str, int]:
    """{model: parameters} of the VAE-GAN's autoencoder and discriminator and of the DiT (meta device)."""
    import numpy as np

    from musicot.acoustic.config import AcousticConfig
    from musicot.acoustic.dit import build_dit
    from musicot.acoustic.vae import MultiScaleSTFTDiscriminator, build_vae

    cfg = AcousticConfig.from_config(config)
    frame_dim = cfg.vae.model.latent_dim if cfg.space == "vae" else cfg.mel.n_mels * cfg.channels
    with torch.device("meta"):
        vae = build_vae(cfg.vae, cfg.sample_rate, cfg.channels) if not cfg.vae.pretrained else None
        disc = MultiScaleSTFTDiscriminator(cfg.vae.discriminator, cfg.channels)
        dit = build_dit(
            cfg.dit, cfg.space, frame_dim, 1.0, 1.0, n_tokens, clap_dim, np.zeros(frame_dim), np.ones(frame_dim)
        )
    count = lambda m: int(sum(p.numel() for p in m.parameters()))  # noqa: E731
    out = {"acoustic VAE (AutoencoderOobleck)": count(vae)} if vae is not None else {}
    return out | {
        "acoustic VAE discriminator": count(disc),
        "acoustic DiT (StableAudioDiTModel + conditioner)": count(dit),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("config.yaml"))
    args = parser.parse_args(argv)
    for name, count in model_sizes(load_config(args.config)).items():
        print(f"{name}: {count:,} parameters ({count / 1e6:.1f}M)")


if __name__ == "__main__":
    main()
