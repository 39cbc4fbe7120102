"""The latent DiT (musicot.acoustic.dit) and its sampler (musicot.acoustic.sample): output shapes for each
conditioning, which inputs each conditioning reads, token alignment, the v-objective, a learning step,
seeded sampling, classifier-free guidance and save/load through diffusers' own from_pretrained."""

from __future__ import annotations

import math
import types
import warnings
from itertools import pairwise

import numpy as np
import pytest
import torch
from diffusers import StableAudioDiTModel

from musicot.acoustic.dit import (
    CONDITIONER_FILE,
    SPEC_FILE,
    TRANSFORMER_DIR,
    build_dit,
    load_dit,
    save_dit,
    token_index,
    v_objective,
)
from musicot.acoustic.sample import crop_conditions, denormalise, guided, sample_frames, unconditional
from tests.acoustic.tiny import (
    CLAP_DIM,
    FRAME_DIM,
    N_TOKENS,
    TINY_DIT,
    acoustic_config,
    paper_config,
    tiny_batch,
    tiny_dit,
)


@pytest.fixture(autouse=True)
def _quiet_brownian_tree():
    """torchsde's Brownian tree warns about query times at the interval's float edges; not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Should have", category=UserWarning)
        yield


def _sample_cfg(**over):
    return acoustic_config({"dit": {"sample": {"steps": 3, **over}}}).dit.sample


# --- forward -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("conditioning", ["concat", "cross", "both"])
def test_forward_shape(conditioning):
    model = tiny_dit(conditioning).eval()
    x, cond = tiny_batch(model, n_frames=12)
    with torch.no_grad():
        v = model(x, torch.tensor([0.2, 0.9]), **cond)
    assert v.shape == (2, FRAME_DIM, 12)
    assert torch.isfinite(v).all()
    extra = TINY_DIT["token_dim"] if conditioning != "cross" else 0
    assert model.transformer.config.in_channels == FRAME_DIM + extra
    assert model.transformer.config.out_channels == FRAME_DIM
    assert model.transformer.config.global_states_input_dim == CLAP_DIM + 2


@pytest.mark.parametrize(
    ("conditioning", "reads_frame_tokens", "reads_cross_tokens"),
    [("concat", True, False), ("cross", False, True), ("both", True, True)],
)
def test_each_conditioning_reads_its_tokens(conditioning, reads_frame_tokens, reads_cross_tokens):
    model = tiny_dit(conditioning).eval()
    x, cond = tiny_batch(model)
    t = torch.tensor([0.5, 0.5])
    with torch.no_grad():
        base = model(x, t, **cond)
        other_frames = model(x, t, **{**cond, "frame_tokens": (cond["frame_tokens"] + 1) % N_TOKENS})
        other_cross = model(x, t, **{**cond, "cross_tokens": (cond["cross_tokens"] + 1) % N_TOKENS})
    assert (not torch.equal(base, other_frames)) == reads_frame_tokens
    assert (not torch.equal(base, other_cross)) == reads_cross_tokens


def test_global_states_hold_clap_presence_and_duration():
    model = tiny_dit()
    clap = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    g = model.global_states(clap, torch.tensor([True, False]), torch.tensor([30.0, 6.0]))
    expected = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 1.0, 0.5]], [[0.0, 0.0, 0.0, 0.0, 0.0, 0.1]]])
    torch.testing.assert_close(g, expected)  # max_duration_s is 60 by default


def test_paper_dit_is_about_a_billion_parameters():
    cfg = paper_config()
    with torch.device("meta"):
        model = build_dit(cfg.dit, "vae", 64, 44100 / 2048, 25.0, 1024, 512, np.zeros(64), np.ones(64))
        x = torch.zeros(1, 64, 10)
        tokens = torch.zeros(1, 10, dtype=torch.long)
        v = model(x, torch.zeros(1), tokens, tokens[:, :9], torch.zeros(1, 1, 512 + 2))
    n = sum(p.numel() for p in model.parameters())
    print(f"paper DiT parameters: {n:,}")
    assert 0.9e9 < n < 1.2e9  # Stable Audio Open's DiT is ~1.06B
    assert v.shape == (1, 64, 10)


# --- token alignment ---------------------------------------------------------------------------------


def test_token_index_is_floor_of_the_frame_start_time():
    # 31.25 frames/s against 25 tokens/s: frame j starts at token j * 25 / 31.25 = 4j / 5
    for start in (0, 3, 1000):
        expected = [(j + start) * 4 // 5 for j in range(200)]
        assert token_index(200, 31.25, 25.0, start).tolist() == expected


def test_crop_conditions_map_frames_to_tokens_and_pad_with_null():
    model = tiny_dit()
    tokens = np.arange(10) + 5  # ten tokens: 0.4 s
    ft, ct = crop_conditions(model, tokens, 16)
    null = model.null_token
    assert null == N_TOKENS
    expected = [tokens[j * 4 // 5] if j * 4 // 5 < 10 else null for j in range(16)]
    assert ft.tolist() == expected
    assert ft.tolist()[12:] == [tokens[9], null, null, null]  # frame 12 starts at token 9.6, frame 13 at 10.4
    assert ct.tolist() == [*tokens.tolist(), null, null, null, null]  # ceil(16 / 31.25 * 25) + 1 = 14
    ft, ct = crop_conditions(model, tokens, 6, start_frame=5)
    assert ft.tolist() == [tokens[(j + 5) * 4 // 5] for j in range(6)]  # tokens 4, 4, 5, 6, 7, 8
    assert ct.tolist() == [tokens[i] if i < 10 else null for i in range(4, 4 + 6)]  # from token 4, ceil(4.8) + 1


def test_cross_tokens_length_is_ceil_of_the_token_span_plus_one():
    """ceil(n_frames / frame_rate * token_rate) + 1 tokens, exactly, for every crop length (here 4 n / 5 + 1)."""
    model = tiny_dit()
    tokens = np.zeros(2000, dtype=np.int64)
    lengths = {n: len(crop_conditions(model, tokens, n)[1]) for n in range(1, 400)}
    wrong = {n: got for n, got in lengths.items() if got != -(-n * 4 // 5) + 1}
    assert not wrong, f"cross-token counts off for n_frames {sorted(wrong)} (float rounding of a whole token count)"


def test_unconditional_drops_tokens_and_clap_but_keeps_duration():
    model = tiny_dit()
    _, cond = tiny_batch(model)
    un = unconditional(model, cond)
    assert (un["frame_tokens"] == model.null_token).all() and (un["cross_tokens"] == model.null_token).all()
    for key in ("frame_tokens", "cross_tokens"):
        assert un[key].shape == cond[key].shape
    assert (un["global_states"][:, 0, : CLAP_DIM + 1] == 0).all()
    torch.testing.assert_close(un["global_states"][:, 0, -1], cond["global_states"][:, 0, -1])
    assert cond["global_states"][0, 0, CLAP_DIM] == 1 and cond["global_states"][1, 0, CLAP_DIM] == 0  # NaN = absent


def test_denormalise_inverts_the_frame_statistics():
    model = tiny_dit()
    frames = torch.zeros(1, FRAME_DIM, 3)
    frames[0, :, 1] = 1.0
    out = denormalise(model, frames)
    np.testing.assert_allclose(out[0, :, 0], model.spec.frame_mean, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 1], np.add(model.spec.frame_mean, model.spec.frame_std), rtol=1e-6)


# --- objective and learning --------------------------------------------------------------------------


def test_v_objective_is_the_mse_to_alpha_eps_minus_sigma_x0():
    seen = {}

    def model(x_t, t, **cond):
        seen["x_t"], seen["cond"] = x_t, cond
        return torch.zeros_like(x_t)

    x0, noise = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    t = torch.tensor([0.0, 1.0 / 3.0])
    loss = v_objective(model, x0, t, noise, {"tag": 1})
    a = torch.tensor([1.0, math.cos(math.pi / 6)])[:, None, None]
    s = torch.tensor([0.0, math.sin(math.pi / 6)])[:, None, None]
    torch.testing.assert_close(seen["x_t"], a * x0 + s * noise)
    torch.testing.assert_close(loss, torch.mean((a * noise - s * x0) ** 2))
    assert seen["cond"] == {"tag": 1}


def test_dit_steps_lower_the_v_loss():
    model = tiny_dit("both")
    x0, cond = tiny_batch(model, n_frames=12, seed=1)
    g = torch.Generator().manual_seed(0)
    t = torch.tensor([0.3, 0.7])
    noise = torch.randn(x0.shape, generator=g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = v_objective(model, x0, t, noise, cond)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(v_objective(model, x0, t, noise, cond).item())
    assert all(b < a for a, b in pairwise(losses)), losses  # every step lowers it
    assert model.token_embed.weight.grad.abs().sum() > 0  # the conditioner learns with the transformer


# --- sampling ----------------------------------------------------------------------------------------


def test_sampling_is_deterministic_under_a_seed():
    model = tiny_dit().eval()
    _, cond = tiny_batch(model, n_frames=10)
    cfg = _sample_cfg(cfg_scale=2.0)
    a = sample_frames(model, cond, 10, cfg, seed=5)
    b = sample_frames(model, cond, 10, cfg, seed=5)
    c = sample_frames(model, cond, 10, cfg, seed=6)
    assert a.shape == (2, FRAME_DIM, 10) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)


def test_sampler_recovers_a_point_mass_with_the_exact_v():
    """A model that returns the true v of a single-point data set (in this module's time convention) is sampled
    back to that point by the scheduler: the training and sampling parameterisations agree."""
    x0 = torch.tensor([[[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]])

    class Oracle:
        spec = types.SimpleNamespace(frame_dim=2)

        def __call__(self, x, t, **cond):
            alpha = torch.cos(t * math.pi / 2)[:, None, None]
            sigma = torch.sin(t * math.pi / 2)[:, None, None]
            eps = (x - alpha * x0) / sigma  # x is the scheduler's scaled input: alpha x0 + sigma eps
            return alpha * eps - sigma * x0

    cond = {"frame_tokens": torch.zeros(1, 3, dtype=torch.long)}
    out = sample_frames(Oracle(), cond, 3, _sample_cfg(steps=8, cfg_scale=1.0), 0)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


def test_guidance_scale_one_is_the_conditional_prediction():
    model = tiny_dit().eval()
    x, cond = tiny_batch(model)
    t = torch.tensor(0.4)
    with torch.no_grad():
        direct = model(x, torch.full((2,), 0.4), **cond)
        assert torch.equal(guided(model, x, t, cond, unconditional(model, cond), 1.0), direct)
        assert torch.equal(guided(model, x, t, cond, None, 3.0), direct)  # no unconditional batch: conditional


@pytest.mark.parametrize("scale", [0.0, 2.5])
def test_guidance_is_uncond_plus_scale_times_difference(scale):
    model = tiny_dit().eval()
    x, cond = tiny_batch(model)
    uncond = unconditional(model, cond)
    tt = torch.full((2,), 0.6)
    with torch.no_grad():
        v_c = model(x, tt, **cond)
        v_u = model(x, tt, **uncond)
        got = guided(model, x, torch.tensor(0.6), cond, uncond, scale)
    assert not torch.allclose(v_c, v_u, atol=1e-4)
    torch.testing.assert_close(got, v_u + scale * (v_c - v_u), atol=1e-5, rtol=0)


# --- save / load -------------------------------------------------------------------------------------


def test_saved_dit_loads_with_diffusers_and_load_dit(tmp_path):
    model = tiny_dit("both", seed=2).eval()
    with torch.no_grad():  # non-zero conditioner weights, so a failed load would show
        model.empty_cross.normal_()
    save_dit(model, tmp_path / "dit", extra={"note": "ignored by load_dit"})
    assert {p.name for p in (tmp_path / "dit").iterdir()} == {TRANSFORMER_DIR, CONDITIONER_FILE, SPEC_FILE}

    plain = StableAudioDiTModel.from_pretrained(str(tmp_path / "dit" / TRANSFORMER_DIR))
    expected = model.transformer.state_dict()
    state = plain.state_dict()
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)

    loaded = load_dit(tmp_path / "dit")
    assert not loaded.training and loaded.spec == model.spec
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    x, cond = tiny_batch(model)
    with torch.no_grad():
        t = torch.tensor([0.1, 0.8])
        torch.testing.assert_close(loaded(x, t, **cond), model(x, t, **cond), atol=1e-5, rtol=0)


def test_load_dit_without_spec_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        load_dit(tmp_path / "empty")
