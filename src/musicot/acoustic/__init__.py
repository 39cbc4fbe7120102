"""The acoustic stage: a Stable-Audio VAE-GAN and a latent DiT that render semantic tokens as audio."""
