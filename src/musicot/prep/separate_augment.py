"""The separator's training augmentation: demucs' own modules, plus a mono downmix.

Demucs trains on stems, not mixes: every augmentation changes the stems of a batch, and the
mixture is their sum afterwards, so `mix == sum(stems)` holds for every example by
construction. From `demucs.augment` we take FlipSign (each stem's polarity), FlipChannels
(each stem's left/right) and Scale (each stem's gain, uniform in `gain_range`), which are what
demucs' solver applies; the cross-song remix is drawn in `separate_train` (each stem from its
own song at its own offset), because demucs' Remix only permutes stems within one batch.

MonoDownmix is ours: the acoustic model renders mono songs, and the analyzability of generated
songs separates them, so the separator must not depend on where the corpus pans an
instrument. With probability `mono_prob` an example's stems are all downmixed to mono (kept as
two identical channels, the layout the model reads).

demucs' modules draw from torch's global generator; `augment_stems` forks it and seeds it from
(seed, step), so a batch stays a pure function of (seed, step) and a resumed run draws the
batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from demucs import augment
from torch import nn

AUGMENT_STREAM = 2  # the augmentation's RNG stream under the run seed (0: crops, 1: validation)


class MonoDownmix(nn.Module):
    """Replace each example's stems by their channel mean with probability `proba` (training only)."""

    def __init__(self, proba: float) -> None:
        super().__init__()
        self.proba = proba

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        batch, _, channels, _ = wav.shape
        if not self.training or self.proba <= 0 or channels == 1:
            return wav
        mono = torch.rand(batch, 1, 1, 1, device=wav.device) < self.proba
        return torch.where(mono, wav.mean(dim=2, keepdim=True).expand_as(wav), wav)


def build_augment(
    gain_range: tuple[float, float], flip_sign: bool, flip_channels: bool, mono_prob: float
) -> nn.Sequential:
    """The augmentation pipeline for (batch, stems, channels, time) tensors, in training mode."""
    parts: list[nn.Module] = []
    if flip_channels:
        parts.append(augment.FlipChannels())
    if flip_sign:
        parts.append(augment.FlipSign())
    low, high = gain_range
    if (low, high) != (1.0, 1.0):
        parts.append(augment.Scale(proba=1.0, min=low, max=high))
    if mono_prob > 0:
        parts.append(MonoDownmix(mono_prob))
    return nn.Sequential(*parts).train()


def augment_stems(pipeline: nn.Sequential, stems: torch.Tensor, seed: int, step: int) -> torch.Tensor:
    """`stems` (batch, stems, channels, time) augmented with draws that depend only on (seed, step)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence([seed, AUGMENT_STREAM, step]).generate_state(1)[0]))
        with torch.no_grad():
            return pipeline(stems.clone())  # Scale multiplies in place


def mix_of(stems: torch.Tensor) -> torch.Tensor:
    """The mixture demucs trains on: the sum of the (augmented) stems."""
    return stems.sum(dim=1)
