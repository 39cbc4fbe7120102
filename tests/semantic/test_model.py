from __future__ import annotations

import numpy as np
import torch

from musicot.semantic.data import span_mask
from musicot.semantic.model import BestRq, hidden_states, parameter_count


def _toy_features(rng: np.random.Generator, batch: int, frames: int, dim: int) -> torch.Tensor:
    """Piecewise-constant rows (segments of 8 frames) plus a little noise: a masked frame is its neighbours' copy."""
    levels = rng.normal(size=(batch, frames // 8 + 1, dim))
    x = np.repeat(levels, 8, axis=1)[:, :frames] + 0.05 * rng.normal(size=(batch, frames, dim))
    return torch.from_numpy(x.astype(np.float32))


def test_mask_replaces_the_masked_input_frames(toy_cfg):
    cfg = toy_cfg()
    torch.manual_seed(0)
    model = BestRq(cfg.model, cfg.features, cfg.ssl).eval()
    x = torch.randn(2, 20, cfg.features.dim)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, 5:9] = True
    changed = x.clone()
    changed[:, 5:9] += torch.randn(2, 4, cfg.features.dim)
    with torch.no_grad():
        a = model.encoder(x, mask_time_indices=mask).last_hidden_state
        b = model.encoder(changed, mask_time_indices=mask).last_hidden_state
        c = model.encoder(changed).last_hidden_state
    torch.testing.assert_close(a, b)  # what was under the mask never reaches the encoder
    assert not torch.allclose(a, c, atol=1e-4)  # without the mask the change is seen
    states = hidden_states(model.encoder, x)
    assert len(states) == cfg.model.layers + 1 and states[0].shape == (2, 20, cfg.model.hidden)


def test_masked_prediction_loss_decreases(toy_cfg):
    cfg = toy_cfg()
    torch.manual_seed(0)
    model = BestRq(cfg.model, cfg.features, cfg.ssl)
    quantizer_before = {k: v.clone() for k, v in model.quantizer.state_dict().items()}
    optimizer = torch.optim.AdamW(model.trained_parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(40):
        x = _toy_features(rng, 8, 48, cfg.features.dim)
        mask = torch.from_numpy(span_mask((8, 48), 0.05, 4, rng))
        loss, _ = model(x, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    for key, value in model.quantizer.state_dict().items():  # the targets' quantizer stays frozen
        torch.testing.assert_close(value, quantizer_before[key])
    assert parameter_count(model.encoder) > 0
