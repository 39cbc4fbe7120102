"""The VAE-GAN (musicot.acoustic.vae) and the acoustic config's checks: AutoencoderOobleck shapes (tiny and
Stable Audio Open's), the multi-scale STFT discriminator, which network each loss term moves, a learning
step, and save/load through diffusers' own from_pretrained."""

from __future__ import annotations

from dataclasses import asdict, replace
from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import AutoencoderOobleck
from torch.func import functional_call

from musicot.acoustic.vae import (
    MultiScaleSTFTDiscriminator,
    VaeGan,
    build_vae,
    feature_matching,
    hinge_discriminator,
    hinge_generator,
    load_vae,
    stft_loss,
    vae_gan_loss,
    vae_hop,
)
from musicot.config import ConfigError
from tests.acoustic.tiny import PAPER_VAE, TINY_VAE, acoustic_config, paper_config, sine, tiny_vae


def _audio(batch: int = 2, channels: int = 1, n: int = 512, seed: int = 0) -> torch.Tensor:
    """Tones plus a little noise, (batch, channels, n) at 16 kHz."""
    rng = np.random.default_rng(seed)
    noise = lambda: 0.02 * rng.normal(size=n).astype(np.float32)  # noqa: E731
    rows = [[sine(f, 16000, n, 0.4) + noise() for f in rng.uniform(200, 2000, channels)] for _ in range(batch)]
    return torch.from_numpy(np.asarray(rows, dtype=np.float32))


def _vae_gan(cfg):
    torch.manual_seed(0)
    vae = build_vae(cfg.vae, cfg.sample_rate, cfg.channels)
    return VaeGan(vae, MultiScaleSTFTDiscriminator(cfg.vae.discriminator, cfg.channels))


# --- config ------------------------------------------------------------------------------------------


def test_config_derives_hop_and_latent_dim():
    cfg = acoustic_config()
    assert cfg.vae.model.hop == 4 and cfg.vae.model.latent_dim == 2
    paper = acoustic_config({"sample_rate": 44100, "channels": 2, "vae": {"model": PAPER_VAE}})
    assert paper.vae.model.hop == 2048 and paper.vae.model.latent_dim == 64
    assert paper.vae.model.downsampling_ratios == (2, 4, 4, 8, 8)  # lists become tuples (frozen, hashable)


def test_config_rejects_odd_encoder_hidden_size():
    with pytest.raises(ConfigError, match="encoder_hidden_size must be even"):
        acoustic_config({"vae": {"model": {"encoder_hidden_size": 5}}})


def test_config_rejects_channel_multiples_of_wrong_length():
    with pytest.raises(ConfigError, match="channel_multiples needs one entry per downsampling ratio"):
        acoustic_config({"vae": {"model": {"downsampling_ratios": [2, 2], "channel_multiples": [1, 2, 4]}}})


def test_config_rejects_kv_heads_not_dividing_heads():
    with pytest.raises(ConfigError, match="num_key_value_attention_heads"):
        acoustic_config({"dit": {"model": {"num_attention_heads": 3, "num_key_value_attention_heads": 2}}})


# --- autoencoder shapes ------------------------------------------------------------------------------


def test_tiny_vae_encode_decode_shapes():
    cfg = acoustic_config()
    vae = tiny_vae(cfg)
    x = _audio(batch=2, n=400)
    posterior = vae.encode(x).latent_dist
    assert posterior.mean.shape == (2, 2, 100)  # (B, encoder_hidden_size // 2, T / hop)
    assert posterior.std.shape == (2, 2, 100)
    assert vae.decode(posterior.mean).sample.shape == (2, 1, 400)
    assert vae_hop(vae) == 4
    assert vae.config.decoder_input_channels == cfg.vae.model.latent_dim
    assert vae.config.audio_channels == 1 and vae.config.sampling_rate == 16000


def test_tiny_stereo_vae_keeps_channels():
    cfg = acoustic_config({"channels": 2, "vae": {"model": {"encoder_hidden_size": 6}}})
    vae = tiny_vae(cfg)
    z = vae.encode(_audio(batch=1, channels=2, n=64)).latent_dist.mode()
    assert z.shape == (1, 3, 16)
    assert vae.decode(z).sample.shape == (1, 2, 64)


def test_paper_vae_is_stable_audio_open_shape():
    cfg = paper_config()
    assert (cfg.sample_rate, cfg.channels) == (44100, 2)
    assert asdict(cfg.vae.model) == {k: tuple(v) if isinstance(v, list) else v for k, v in PAPER_VAE.items()}
    with torch.device("meta"):
        vae = build_vae(replace(cfg.vae, pretrained=""), cfg.sample_rate, cfg.channels)
        x = torch.zeros(1, 2, 2048 * 4)
    n = sum(p.numel() for p in vae.parameters())
    print(f"paper VAE parameters: {n:,}")
    assert 1e8 < n < 2e8  # Stable Audio Open's VAE is ~157M
    assert vae_hop(vae) == 2048 and vae.config.decoder_input_channels == 64
    posterior = vae.encode(x).latent_dist
    assert posterior.mean.shape == (1, 64, 4)
    assert vae.decode(posterior.mean).sample.shape == (1, 2, 2048 * 4)


# --- discriminator and losses ------------------------------------------------------------------------


def test_discriminator_gives_one_output_per_fft_size():
    cfg = acoustic_config({"vae": {"discriminator": {"channels": 3, "n_ffts": [128, 64, 32]}}})
    disc = MultiScaleSTFTDiscriminator(cfg.vae.discriminator, 1)
    out = disc(_audio(batch=2, n=512))
    assert len(out) == 3
    for (logits, features), n_fft in zip(out, (128, 64, 32), strict=True):
        frames = 512 // (n_fft // 4) + 1
        freqs = [n_fft // 2 + 1]
        for _ in range(3):  # three stride-2 convolutions along frequency, then one that keeps it
            freqs.append((freqs[-1] + 1) // 2)
        freqs.append(freqs[-1])
        assert logits.shape == (2, 1, frames, freqs[-1])
        assert [tuple(f.shape) for f in features] == [(2, 3, frames, f) for f in freqs]


def test_stereo_discriminator_reads_both_channels():
    cfg = acoustic_config({"vae": {"discriminator": {"channels": 2, "n_ffts": [64]}}})
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(cfg.vae.discriminator, 2)
    x = _audio(batch=1, channels=2, n=256)
    changed = x.clone()
    changed[:, 1] = 0.0
    assert disc.scales[0].convs[0].in_channels == 4  # real | imag of each channel
    assert not torch.allclose(disc(x)[0][0], disc(changed)[0][0])


def test_loss_parts_before_and_after_disc_start():
    cfg = acoustic_config()
    tc = cfg.vae.train
    model = _vae_gan(cfg)
    stft = stft_loss(tc, cfg.sample_rate, cfg.channels)
    x = _audio(batch=2, n=512)
    loss, parts = vae_gan_loss(model, x, tc.disc_start - 1, tc, stft)
    assert set(parts) == {"stft", "kl"}
    assert loss.item() == pytest.approx(tc.stft_weight * parts["stft"] + tc.kl_weight * parts["kl"], rel=1e-5)
    loss, parts = vae_gan_loss(model, x, tc.disc_start, tc, stft)
    assert set(parts) == {"stft", "kl", "adv", "fm", "disc"}
    expected = (
        tc.stft_weight * parts["stft"]
        + tc.kl_weight * parts["kl"]
        + tc.adv_weight * parts["adv"]
        + tc.fm_weight * parts["fm"]
        + parts["disc"]
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert parts["disc"] > 0 and parts["adv"] > 0 and parts["fm"] > 0


def test_hinge_and_feature_matching_values():
    real = [(torch.tensor([2.0, 0.5]), [torch.ones(2)]), (torch.tensor([-1.0]), [torch.zeros(3)])]
    fake = [(torch.tensor([-2.0, 0.0]), [torch.full((2,), 3.0)]), (torch.tensor([0.5]), [torch.ones(3)])]
    # scale 1: relu(1 - real) mean = (0 + .5) / 2, relu(1 + fake) mean = (0 + 1) / 2; scale 2: 2 + 1.5
    assert hinge_discriminator(real, fake).item() == pytest.approx(0.25 + 0.5 + 2.0 + 1.5)
    # relu(1 - fake): scale 1 (3 + 1) / 2, scale 2 0.5
    assert hinge_generator(fake).item() == pytest.approx(2.0 + 0.5)
    assert feature_matching(real, fake).item() == pytest.approx((2.0 + 1.0) / 2)


def test_generator_terms_put_no_gradient_on_the_discriminator():
    cfg = acoustic_config()
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(cfg.vae.discriminator, 1)
    fake = _audio(batch=2, n=512).requires_grad_(True)
    frozen = {k: v.detach() for k, v in disc.named_parameters()}
    out = functional_call(disc, frozen, (fake,))
    (hinge_generator(out) + feature_matching(disc(_audio(batch=2, n=512, seed=1)), out)).backward()
    assert all(p.grad is None for p in disc.parameters())
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def _grads(module) -> dict[str, torch.Tensor]:
    return {k: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for k, p in module.named_parameters()}


def _loss_grads(cfg, step: int):
    model = _vae_gan(cfg)
    stft = stft_loss(cfg.vae.train, cfg.sample_rate, cfg.channels)
    torch.manual_seed(1)  # the posterior sample
    loss, _ = vae_gan_loss(model, _audio(batch=2, n=512), step, cfg.vae.train, stft)
    loss.backward()
    return _grads(model.vae), _grads(model.disc)


def test_each_loss_moves_only_its_own_network():
    """The discriminator's gradient is its hinge loss's alone; the autoencoder's gets nothing from that loss."""
    full = acoustic_config({"vae": {"train": {"adv_weight": 0.7, "fm_weight": 5.0}}})
    zero = {"stft_weight": 0.0, "kl_weight": 0.0, "adv_weight": 0.0, "fm_weight": 0.0}
    disc_only = acoustic_config({"vae": {"train": zero}})
    step = full.vae.train.disc_start
    vae_full, disc_full = _loss_grads(full, step)
    vae_none, disc_alone = _loss_grads(disc_only, step)
    assert any(g.abs().sum() > 0 for g in disc_alone.values())
    for key, grad in disc_full.items():  # the generator's adversarial and feature-matching terms add nothing
        torch.testing.assert_close(grad, disc_alone[key], rtol=1e-5, atol=1e-7)
    assert all(g.abs().sum() == 0 for g in vae_none.values())  # d_loss sees the decoded audio detached
    assert any(g.abs().sum() > 0 for g in vae_full.values())


def test_no_discriminator_gradient_before_disc_start():
    cfg = acoustic_config()
    _, disc = _loss_grads(cfg, cfg.vae.train.disc_start - 1)
    assert all(g.abs().sum() == 0 for g in disc.values())


def test_reconstruct_cuts_to_input_length_and_mode_is_deterministic():
    model = _vae_gan(acoustic_config())
    x = _audio(batch=2, n=512)
    a, kl = model.reconstruct(x, sample=False)
    b, _ = model.reconstruct(x, sample=False)
    assert a.shape == x.shape and kl.shape == () and kl.item() >= 0
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_reconstruction_steps_lower_the_loss():
    cfg = acoustic_config({"vae": {"train": {"disc_start": 100}}})
    tc = cfg.vae.train
    model = _vae_gan(cfg)
    stft = stft_loss(tc, cfg.sample_rate, cfg.channels)
    x = _audio(batch=2, n=512)
    optimizer = torch.optim.AdamW(model.vae.parameters(), lr=1e-3, betas=tuple(tc.betas))
    losses = []
    for step in range(6):
        torch.manual_seed(0)  # the same posterior noise every step: only the weights change
        loss, parts = vae_gan_loss(model, x, step, tc, stft)
        assert set(parts) == {"stft", "kl"}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(b < a for a, b in pairwise(losses)), losses  # every step lowers it


# --- save / load -------------------------------------------------------------------------------------


def test_saved_vae_loads_with_diffusers_from_pretrained(tmp_path):
    vae = tiny_vae()
    vae.save_pretrained(str(tmp_path))
    loaded = AutoencoderOobleck.from_pretrained(str(tmp_path))
    ours = load_vae(tmp_path)
    expected = vae.state_dict()
    for other in (loaded, ours):
        state = other.state_dict()
        assert state.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    assert not ours.training
    x = _audio(batch=1, n=128)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x).latent_dist.mode(), vae.eval().encode(x).latent_dist.mode())


def test_build_vae_with_pretrained_loads_the_folder(tmp_path):
    vae = tiny_vae(seed=3)
    vae.save_pretrained(str(tmp_path))
    cfg = acoustic_config({"vae": {"pretrained": str(tmp_path), "model": {"encoder_hidden_size": 8}}})
    loaded = build_vae(cfg.vae, cfg.sample_rate, cfg.channels)
    assert loaded.config.encoder_hidden_size == TINY_VAE["encoder_hidden_size"]  # the folder's shape wins
    key = "encoder.conv1.weight_v"
    torch.testing.assert_close(loaded.state_dict()[key], vae.state_dict()[key])


def test_load_vae_without_config_raises(tmp_path):
    folder = tmp_path / "not_a_vae"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="not_a_vae"):
        load_vae(folder)
