"""The separator's training augmentation: the model's input is always the sum of its targets."""

from __future__ import annotations

import pytest
import torch

from musicot.prep.separate_augment import MonoDownmix, augment_stems, build_augment, mix_of
from musicot.prep.separate_train import pooled_sdr, separation_loss

FULL = {"gain_range": (0.25, 1.25), "flip_sign": True, "flip_channels": True, "mono_prob": 0.5}


def _stems(batch: int = 8, seed: int = 0) -> torch.Tensor:
    """(batch, 6 stems, 2 channels, time) with left != right, so channel flips and downmixes show."""
    g = torch.Generator().manual_seed(seed)
    stems = torch.randn(batch, 6, 2, 400, generator=g)
    stems[:, :, 1] *= 0.3
    return stems


class _Spy(torch.nn.Module):
    """A 'separator' that records its input and returns zeros of the stems' shape."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: torch.Tensor | None = None

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        self.seen = mix.clone()
        return torch.zeros(mix.shape[0], 6, *mix.shape[1:])


def test_model_input_is_the_sum_of_the_augmented_stems():
    raw = _stems()
    stems = augment_stems(build_augment(**FULL), raw, seed=3, step=7)
    assert not torch.allclose(stems, raw)  # something was changed
    spy = _Spy()
    loss = separation_loss("mse")(spy, stems)
    assert torch.equal(spy.seen, stems.sum(dim=1)) and torch.equal(mix_of(stems), stems.sum(dim=1))
    assert float(loss) == pytest.approx(float(stems.pow(2).mean()))


def _gain_fit(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(least-squares gain g, residual of y - g x)."""
    gain = float((y * x).sum() / x.pow(2).sum())
    return gain, float((y - gain * x).abs().max())


def test_each_stem_keeps_its_shape_up_to_gain_sign_and_channels():
    raw = _stems()
    stems = augment_stems(build_augment((0.25, 1.25), True, True, 0.0), raw, seed=1, step=0)
    swapped = 0
    for b in range(raw.shape[0]):
        for s in range(raw.shape[1]):
            fits = [_gain_fit(raw[b, s], stems[b, s]), _gain_fit(raw[b, s].flip(0), stems[b, s])]
            gain, residual = min(fits, key=lambda f: f[1])
            swapped += fits[1][1] < fits[0][1]
            assert residual < 1e-5 and 0.25 - 1e-6 <= abs(gain) <= 1.25 + 1e-6
    assert 0 < swapped < raw.shape[0] * raw.shape[1]  # some stems swapped, not all


def test_draws_depend_only_on_seed_and_step_and_leave_global_rng_alone():
    pipeline, raw = build_augment(**FULL), _stems()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = augment_stems(pipeline, raw, seed=5, step=2)
    assert torch.equal(torch.rand(3), before)  # the global generator did not move
    assert torch.equal(a, augment_stems(pipeline, raw, seed=5, step=2))
    assert not torch.equal(a, augment_stems(pipeline, raw, seed=5, step=3))
    assert torch.equal(raw, _stems())  # the input is not modified in place


def test_mono_downmix_makes_both_channels_equal_and_keeps_the_sum():
    raw = _stems()
    mono = MonoDownmix(1.0).train()(raw)
    assert torch.equal(mono[:, :, 0], mono[:, :, 1])
    torch.testing.assert_close(mono.sum(dim=2), raw.sum(dim=2))
    assert torch.equal(MonoDownmix(1.0).eval()(raw), raw)  # evaluation is never augmented


def test_all_off_is_the_identity():
    raw = _stems()
    assert torch.equal(augment_stems(build_augment((1.0, 1.0), False, False, 0.0), raw, 0, 0), raw)


def test_pooled_sdr_known_values():
    truth = _stems(batch=2)
    estimate = truth.clone()
    estimate[:, 0] *= 0.5  # error energy = 1/4 of the signal: 6.02 dB
    estimate[:, 1] = 0.0  # silence: 0 dB
    sdrs = pooled_sdr(truth, estimate)
    assert sdrs[0] == pytest.approx(10 * torch.log10(torch.tensor(4.0)).item(), abs=1e-6)
    assert sdrs[1] == pytest.approx(0.0, abs=1e-9)
    assert sdrs[2] > 100
