"""The VAE-GAN: diffusers' AutoencoderOobleck, an EnCodec-style multi-scale STFT discriminator, and the
losses stable-audio-tools trains them with (auraloss' multi-resolution STFT, KL, hinge adversarial,
feature matching).

Both networks train under one optimizer (a parameter group each) and one backward pass: the
discriminator's loss sees the decoded audio detached, and the autoencoder's adversarial and
feature-matching terms see the discriminator through detached parameters (`torch.func.functional_call`),
so each loss moves only its own network, as alternating updates would, and the shared training loop
(resume, learning-signal probe) applies unchanged.
"""

from __future__ import annotations

from pathlib import Path

import auraloss
import torch
from torch import nn
from torch.func import functional_call

from musicot.acoustic.config import DiscriminatorConfig, VaeConfig, VaeTrainConfig


def build_vae(cfg: VaeConfig, sample_rate: int, channels: int):
    """A freshly initialised AutoencoderOobleck of `cfg.model` (or the local `cfg.pretrained` folder)."""
    from diffusers import AutoencoderOobleck

    if cfg.pretrained:
        return load_vae(cfg.pretrained)
    m = cfg.model
    return AutoencoderOobleck(
        encoder_hidden_size=m.encoder_hidden_size,
        downsampling_ratios=list(m.downsampling_ratios),
        channel_multiples=list(m.channel_multiples),
        decoder_channels=m.decoder_channels,
        decoder_input_channels=m.latent_dim,
        audio_channels=channels,
        sampling_rate=sample_rate,
    )


def load_vae(folder: str | Path):
    """An AutoencoderOobleck saved with save_pretrained (ours, or Stable Audio Open's `vae/`), in eval mode."""
    from diffusers import AutoencoderOobleck

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{folder} holds no AutoencoderOobleck (config.json missing): point acoustic.vae.pretrained at a "
            "diffusers VAE folder, e.g. the `vae` subfolder of a local Stable Audio Open download"
        )
    return AutoencoderOobleck.from_pretrained(str(folder), local_files_only=True).eval()


def vae_hop(vae) -> int:
    """Audio samples per latent frame."""
    hop = 1
    for ratio in vae.config.downsampling_ratios:
        hop *= int(ratio)
    return hop


class STFTDiscriminator(nn.Module):
    """One scale of EnCodec's discriminator: 2-D convolutions over the complex spectrogram (real | imag)."""

    def __init__(self, channels: int, n_fft: int, audio_channels: int):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        act = nn.LeakyReLU(0.2)
        convs = [nn.Conv2d(2 * audio_channels, channels, (3, 9), padding=(1, 4))]
        for dilation in (1, 2, 4):
            convs.append(
                nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(dilation, 1), padding=(dilation, 4))
            )
        convs.append(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1)))
        self.convs = nn.ModuleList(convs)
        self.act = act
        self.out = nn.Conv2d(channels, 1, (3, 3), padding=(1, 1))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = audio.shape
        spec = torch.stft(audio.reshape(b * c, t), self.n_fft, self.n_fft // 4, window=self.window, return_complex=True)
        spec = torch.view_as_real(spec).reshape(b, c, *spec.shape[-2:], 2)  # (b, c, freq, frames, 2)
        x = spec.permute(0, 1, 4, 3, 2).reshape(b, 2 * c, spec.shape[3], spec.shape[2])  # (b, 2c, frames, freq)
        features = []
        for conv in self.convs:
            x = self.act(conv(x))
            features.append(x)
        return self.out(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """One `STFTDiscriminator` per FFT size (EnCodec's, which Stable Audio's VAE-GAN uses)."""

    def __init__(self, cfg: DiscriminatorConfig, audio_channels: int):
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(cfg.channels, n, audio_channels) for n in cfg.n_ffts)

    def forward(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [scale(audio) for scale in self.scales]


def stft_loss(train: VaeTrainConfig, sample_rate: int, channels: int) -> nn.Module:
    """auraloss' multi-resolution STFT loss as stable-audio-tools sets it up (hop = fft / 4; A-weighted for mono,
    sum-and-difference for stereo)."""
    ffts = list(train.stft_ffts)
    hops, wins = [n // 4 for n in ffts], ffts
    if channels == 2:
        return auraloss.freq.SumAndDifferenceSTFTLoss(fft_sizes=ffts, hop_sizes=hops, win_lengths=wins)
    return auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=ffts, hop_sizes=hops, win_lengths=wins, perceptual_weighting=True, sample_rate=sample_rate
    )


class VaeGan(nn.Module):
    """The autoencoder and its discriminator as one module, so one checkpoint holds both."""

    def __init__(self, vae, disc: MultiScaleSTFTDiscriminator):
        super().__init__()
        self.vae, self.disc = vae, disc

    def reconstruct(self, audio: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(decoded audio cut to the input's length, KL of the posterior)."""
        posterior = self.vae.encode(audio).latent_dist
        z = posterior.sample() if sample else posterior.mode()
        decoded = self.vae.decode(z).sample[..., : audio.shape[-1]]
        return decoded, posterior.kl().mean()


def hinge_discriminator(real: list, fake: list) -> torch.Tensor:
    return sum(torch.relu(1 - r).mean() + torch.relu(1 + f).mean() for (r, _), (f, _) in zip(real, fake, strict=True))


def hinge_generator(fake: list) -> torch.Tensor:
    return sum(torch.relu(1 - f).mean() for f, _ in fake)


def feature_matching(real: list, fake: list) -> torch.Tensor:
    """Mean L1 between the discriminator's feature maps of real and decoded audio, over every layer of every scale."""
    pairs = [(r, f) for (_, rf), (_, ff) in zip(real, fake, strict=True) for r, f in zip(rf, ff, strict=True)]
    return sum((r.detach() - f).abs().mean() for r, f in pairs) / max(len(pairs), 1)


def vae_gan_loss(
    model: VaeGan, audio: torch.Tensor, step: int, train: VaeTrainConfig, stft: nn.Module
) -> tuple[torch.Tensor, dict[str, float]]:
    """The step's total loss (autoencoder + discriminator) and its parts."""
    decoded, kl = model.reconstruct(audio)
    recon = stft(decoded, audio)
    loss = train.stft_weight * recon + train.kl_weight * kl
    parts = {"stft": recon.item(), "kl": kl.item()}
    if step >= train.disc_start:
        frozen = {k: v.detach() for k, v in model.disc.named_parameters()}
        real = model.disc(audio)
        fake_for_disc = model.disc(decoded.detach())
        fake_for_gen = functional_call(model.disc, frozen, (decoded,))
        d_loss = hinge_discriminator(real, fake_for_disc)
        adv = hinge_generator(fake_for_gen)
        fm = feature_matching(real, fake_for_gen)
        loss = loss + train.adv_weight * adv + train.fm_weight * fm + d_loss
        parts.update(adv=adv.item(), fm=fm.item(), disc=d_loss.item())
    return loss, parts
