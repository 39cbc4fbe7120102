"""Dual sampling: well-formed constrained sequences, CFG and temperature per part, referencing,
cached == naive (tokens and logits), batched == one at a time, skipped guidance streams, the bench CLI.

The LM is a randomly initialised tiny MusicLM whose output head is scaled up, so its
distributions are peaked (top probability ~0.3-0.9) and depend on the context: a wrong cache,
mask or position changes the tokens, not just the last digits of near-uniform probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from musicot.lm import bench
from musicot.lm import sample as sample_mod
from musicot.lm.model import ModelSize, MusicLM
from musicot.lm.sample import (
    Prompt,
    SampleConfig,
    guided_logprobs,
    make_plan,
    prompt_lengths,
    sample,
    sample_naive,
)
from musicot.lm.sequence import conditions, flatten_thought
from musicot.lm.vocab import Vocab

VOCAB = Vocab(n_text=50, rvq_levels=3, rvq_size=8, n_semantic=20)
CLAP_DIM = 16
PAPER = SampleConfig(thought_temperature=0.65, audio_temperature=0.75, thought_cfg=2.3, audio_cfg=1.3, top_k=0)
NO_CFG = SampleConfig(0.65, 0.75, 1.0, 1.0, 0)


def tiny_lm(vocab: Vocab = VOCAB, system: str = "musicot", seed: int = 0, sharpen: float = 15.0) -> MusicLM:
    torch.manual_seed(seed)
    model = MusicLM.build(ModelSize(32, 2, 2, 1, 64, 256), vocab, CLAP_DIM, system).eval()
    with torch.no_grad():
        model.llama.lm_head.weight.mul_(sharpen)
    return model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is faster, and robust to a busy machine (OpenMP spin-waits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm() -> MusicLM:
    return tiny_lm()


def prompt(rng: np.random.Generator, n_tags: int, n_lyrics: int, frames: int, n_audio: int, reference: bool = False):
    thought = rng.integers(0, VOCAB.rvq_size, (frames, VOCAB.rvq_levels)) if reference else None
    clap = rng.standard_normal(CLAP_DIM).astype(np.float32)
    tags, lyrics = rng.integers(0, VOCAB.n_text, n_tags).tolist(), rng.integers(0, VOCAB.n_text, n_lyrics).tolist()
    return Prompt(clap, tags, lyrics, frames, n_audio, thought)


def mixed_prompts(seed: int = 0) -> list[Prompt]:
    """Different condition lengths, frame counts and audio lengths; one referencing prompt."""
    rng = np.random.default_rng(seed)
    return [prompt(rng, 3, 10, 2, 12), prompt(rng, 0, 0, 3, 5), prompt(rng, 5, 2, 1, 9, True), prompt(rng, 1, 1, 2, 7)]


def gens(n: int, seed: int = 10) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def tokens(results) -> list[tuple]:
    return [(None if r.thought is None else r.thought.tolist(), r.audio.tolist()) for r in results]


def check_well_formed(vocab: Vocab, plan: sample_mod.Plan, p: Prompt, r, uses_thought: bool) -> None:
    """The whole conditional sequence, token by token, and the decoded result."""
    cot_eos, aud_bos = vocab.special("<cot_eos>"), vocab.special("<aud_bos>")
    n_thought = p.n_frames * vocab.rvq_levels if uses_thought and p.thought is None else 0
    assert len(plan.generated) == n_thought + (2 if n_thought else 0) + p.n_audio
    for t, token in enumerate(plan.generated[:n_thought]):
        lo, hi = vocab.rvq_range(t // p.n_frames)
        assert lo <= token < hi
    if n_thought:
        assert plan.cond[-1] == vocab.special("<cot_bos>")
        assert plan.generated[n_thought : n_thought + 2] == [cot_eos, aud_bos]
    else:
        assert plan.cond[-1] == aud_bos
    lo, hi = vocab.semantic_range()
    assert all(lo <= token < hi for token in plan.generated[-p.n_audio :])
    np.testing.assert_array_equal(r.audio, np.asarray(plan.generated[-p.n_audio :]) - lo)
    if not uses_thought:
        assert r.thought is None
        return
    assert r.thought.shape == (p.n_frames, vocab.rvq_levels)
    if p.thought is not None:
        np.testing.assert_array_equal(r.thought, p.thought)
        assert plan.cond[-3 - r.thought.size : -1] == [
            vocab.special("<cot_bos>"),
            *flatten_thought(vocab, p.thought),
            cot_eos,
        ]
    else:
        assert flatten_thought(vocab, r.thought) == plan.generated[:n_thought]


def test_well_formed_over_random_shapes_and_adversarial_logits(monkeypatch):
    """Property: whatever the logits, every sampled id lies in its position's range and lengths are exact."""
    plans = []

    def recording_plan(model, prompt):
        plans.append(make_plan(model, prompt))
        return plans[-1]

    monkeypatch.setattr(sample_mod, "make_plan", recording_plan)
    rng = np.random.default_rng(1)
    for case in range(24):
        vocab = Vocab(
            int(rng.integers(4, 30)), int(rng.integers(1, 5)), int(rng.integers(2, 9)), int(rng.integers(2, 25))
        )
        model = tiny_lm(vocab, "musicot" if case % 4 else "base", seed=case)
        noise = torch.Generator().manual_seed(case)

        def adversarial(module, args, output, noise=noise, vocab=vocab):
            # Huge logits on every text/special id and on 3 random ids: the legal range must win.
            output = output + 5 * torch.randn(output.shape, generator=noise)
            output[..., : vocab.rvq_base] += 1e4
            output[..., torch.randint(0, vocab.size, (3,), generator=noise)] += 1e4
            return output

        model.llama.lm_head.register_forward_hook(adversarial)
        prompts = []
        for _ in range(int(rng.integers(1, 4))):
            frames = int(rng.integers(1, 4))
            reference = model.uses_thought and rng.random() < 0.3
            thought = rng.integers(0, vocab.rvq_size, (frames, vocab.rvq_levels)) if reference else None
            tags = rng.integers(0, vocab.n_text, int(rng.integers(0, 6))).tolist()
            lyrics = rng.integers(0, vocab.n_text, int(rng.integers(0, 12))).tolist()
            clap = rng.standard_normal(CLAP_DIM).astype(np.float32)
            prompts.append(Prompt(clap, tags, lyrics, frames, int(rng.integers(1, 15)), thought))
        cfg = SampleConfig(
            float(rng.uniform(0.3, 1.5)),
            float(rng.uniform(0.3, 1.5)),
            float(rng.choice([1.0, 2.3, 0.5])),
            float(rng.choice([1.0, 1.3])),
            int(rng.choice([0, 1, 3])),
        )
        plans.clear()
        results = sample(model, prompts, cfg, gens(len(prompts), case))
        for plan, p, r in zip(plans, prompts, results, strict=True):
            check_well_formed(vocab, plan, p, r, model.uses_thought)


def plain_conditional(model: MusicLM, p: Prompt, cfg: SampleConfig, gen: torch.Generator):
    """Textbook ancestral sampling from p(.|C) alone: the oracle for guidance scale 1."""
    ids = [*conditions(VOCAB, p.tag_ids, p.lyric_ids), VOCAB.special("<cot_bos>")]
    ranges = [VOCAB.rvq_range(t // p.n_frames) for t in range(p.n_frames * VOCAB.rvq_levels)]
    ranges += [None, None] + [VOCAB.semantic_range()] * p.n_audio
    clap = torch.as_tensor(p.clap)[None]
    with torch.no_grad():
        for k, legal in enumerate(ranges):
            if legal is None:
                ids.append(VOCAB.special("<cot_eos>" if ranges[k - 1] is not None else "<aud_bos>"))
                continue
            logits = model(torch.tensor([ids]), clap, torch.tensor([True])).logits[0, -1, legal[0] : legal[1]]
            temperature = cfg.thought_temperature if k < len(ranges) - p.n_audio else cfg.audio_temperature
            probs = torch.softmax(torch.log_softmax(logits, -1) / temperature, -1)
            ids.append(legal[0] + int(torch.multinomial(probs, 1, generator=gen)))
    return ids[-p.n_audio :]


def test_cfg_scale_one_is_plain_conditional_sampling(lm):
    prompts = [p for p in mixed_prompts() if p.thought is None]
    got = sample(lm, prompts, NO_CFG, gens(len(prompts)))
    for r, p, g in zip(got, prompts, gens(len(prompts)), strict=True):
        assert (r.audio + VOCAB.semantic_base).tolist() == plain_conditional(lm, p, NO_CFG, g)
    # and guidance does change the result
    assert tokens(sample(lm, prompts, PAPER, gens(len(prompts)))) != tokens(got)


def test_guidance_mixes_log_probabilities():
    cond, uncond = torch.randn(7), torch.randn(7)
    for scale in (1.0, 1.3, 2.3):
        want = torch.log_softmax((scale * cond.log_softmax(-1) + (1 - scale) * uncond.log_softmax(-1)) / 0.65, -1)
        torch.testing.assert_close(guided_logprobs(cond, uncond, scale, 0.65, 0), want)
    torch.testing.assert_close(guided_logprobs(cond, uncond, 1.0, 0.7, 0), guided_logprobs(cond, None, 1.0, 0.7, 0))


def test_top_k_keeps_the_k_most_likely():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.0, -1.0])
    out = guided_logprobs(logits, None, 1.0, 1.0, 2)
    assert torch.isfinite(out).tolist() == [False, True, False, True, False]


@pytest.mark.parametrize("sampler", [sample, sample_naive])
def test_temperature_switches_at_cot_eos(lm, sampler, monkeypatch):
    calls = []

    def spy(cond, uncond, scale, temperature, top_k):
        calls.append((temperature, cond.shape[-1], scale, uncond is not None))
        return guided_logprobs(cond, uncond, scale, temperature, top_k)

    monkeypatch.setattr(sample_mod, "guided_logprobs", spy)
    p = mixed_prompts()[0]
    sampler(lm, [p], PAPER, gens(1))
    n_thought = p.n_frames * VOCAB.rvq_levels
    assert calls[:n_thought] == [(0.65, VOCAB.rvq_size, 2.3, True)] * n_thought
    assert calls[n_thought:] == [(0.75, VOCAB.n_semantic, 1.3, True)] * p.n_audio


def test_referencing_reproduces_the_reference_thought(lm):
    rng = np.random.default_rng(3)
    ref = prompt(rng, 2, 4, 3, 6, reference=True)
    free = Prompt(ref.clap, ref.tag_ids, ref.lyric_ids, ref.n_frames, ref.n_audio)
    r, f = sample(lm, [ref, free], PAPER, gens(2))
    np.testing.assert_array_equal(r.thought, ref.thought)
    # sampled freely from the same conditions, the thought differs (8**9 possibilities)
    assert not np.array_equal(f.thought, ref.thought)
    (n,) = sample_naive(lm, [ref], PAPER, gens(1))
    np.testing.assert_array_equal(n.audio, r.audio)


@pytest.mark.parametrize(
    "cfg", [PAPER, NO_CFG, SampleConfig(0.9, 0.6, 2.3, 1.0, 4), SampleConfig(0.9, 0.6, 1.0, 1.5, 0)]
)
def test_cached_batched_equals_naive_and_one_at_a_time(lm, cfg):
    prompts = mixed_prompts()
    batched = tokens(sample(lm, prompts, cfg, gens(len(prompts))))
    assert batched == tokens(sample_naive(lm, prompts, cfg, gens(len(prompts))))
    one_by_one = [tokens(sample(lm, [p], cfg, [g]))[0] for p, g in zip(prompts, gens(len(prompts)), strict=True)]
    assert batched == one_by_one
    reversed_batch = tokens(sample(lm, prompts[::-1], cfg, gens(len(prompts))[::-1]))
    assert reversed_batch[::-1] == batched


def test_cached_logits_equal_naive_logits(lm, monkeypatch):
    """Both samplers see the same conditional and unconditional logits at every sampled position."""
    seen: dict[str, list] = {"cached": [], "naive": []}
    for name, sampler in (("cached", sample), ("naive", sample_naive)):

        def spy(cond, uncond, scale, temperature, top_k, name=name):
            seen[name].append((cond.clone(), None if uncond is None else uncond.clone()))
            return guided_logprobs(cond, uncond, scale, temperature, top_k)

        monkeypatch.setattr(sample_mod, "guided_logprobs", spy)
        sampler(lm, mixed_prompts()[:1], PAPER, gens(1))
    assert len(seen["cached"]) == len(seen["naive"]) == 2 * VOCAB.rvq_levels + 12
    for (c1, u1), (c2, u2) in zip(seen["cached"], seen["naive"], strict=True):
        torch.testing.assert_close(c1, c2, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(u1, u2, atol=1e-4, rtol=1e-4)


def test_base_system_has_no_thought():
    model = tiny_lm(system="base")
    prompts = [p for p in mixed_prompts() if p.thought is None]
    got = sample(model, prompts, PAPER, gens(len(prompts)))
    assert all(r.thought is None for r in got)
    assert tokens(got) == tokens(sample_naive(model, prompts, PAPER, gens(len(prompts))))
    with pytest.raises(ValueError, match="reference thought"):
        sample(model, mixed_prompts()[2:3], PAPER, gens(1))


@pytest.mark.parametrize(
    ("cfg", "rows"), [(PAPER, [8, 8]), (NO_CFG, [4, 4]), (SampleConfig(1, 1, 2.3, 1.0, 0), [8, 4])]
)
def test_guidance_streams_run_only_when_needed(lm, cfg, rows, monkeypatch):
    """Rows per forward: 2 per prompt with guidance, 1 without; a thought-only guidance row leaves after the thought."""
    sizes = []
    forward = MusicLM.forward

    def spy(self, ids, *args, **kwargs):
        sizes.append(ids.shape[0])
        return forward(self, ids, *args, **kwargs)

    monkeypatch.setattr(MusicLM, "forward", spy)
    rng = np.random.default_rng(0)
    prompts = [prompt(rng, 2, 3, 2, 5) for _ in range(4)]
    sample(lm, prompts, cfg, gens(4))
    assert [sizes[0], sizes[-1]] == rows
    assert len(sizes) == 2 * VOCAB.rvq_levels + 2 + 5  # prefill + one forward per fed token


def test_single_generator_is_reproducible(lm):
    prompts = mixed_prompts()
    a = sample(lm, prompts, PAPER, torch.Generator().manual_seed(5))
    b = sample(lm, prompts, PAPER, torch.Generator().manual_seed(5))
    assert tokens(a) == tokens(b)


def test_prompt_validation(lm):
    rng = np.random.default_rng(0)
    p = prompt(rng, 1, 1, 2, 3)
    with pytest.raises(ValueError, match="CLAP"):
        sample(lm, [Prompt(np.zeros(3), [], [], 2, 3)], PAPER, gens(1))
    with pytest.raises(ValueError, match="reference thought"):
        sample(lm, [Prompt(p.clap, [], [], 2, 3, np.zeros((3, VOCAB.rvq_levels), dtype=int))], PAPER, gens(1))
    with pytest.raises(ValueError, match="positions"):
        sample(lm, [Prompt(p.clap, [], [], 2, 1000)], PAPER, gens(1))
    with pytest.raises(ValueError, match="text ids"):
        sample(lm, [Prompt(p.clap, [VOCAB.n_text], [], 2, 3)], PAPER, gens(1))


def test_config_and_variants(default_config):
    section = default_config["lm"]["sample"]
    assert SampleConfig.from_config(section) == PAPER
    no_dual = SampleConfig.from_config(section, "musicot_no_dual")
    assert (no_dual.thought_temperature, no_dual.thought_cfg, no_dual.audio_cfg) == (0.75, 1.3, 1.3)
    with pytest.raises(Exception, match="no 'nope'"):
        SampleConfig.from_config(section, "nope")
    assert prompt_lengths(16.0, 10.0, 25.0) == (2, 400)
    assert prompt_lengths(20.0, 10.0, 25.0) == (2, 500)


def test_bench_cli_writes_csv_and_markdown(tmp_path):
    out = tmp_path / "bench.csv"
    config = '{"lm": {"model": {"hidden": 32, "layers": 2, "heads": 2, "kv_heads": 1, "intermediate": 64}}}'
    argv = ["--config", config, "--random-model", "--out", str(out), "--condition-tokens", "12", "--frames", "2"]
    assert bench.main([*argv, "--audio-tokens", "10", "--batch-size", "3", "--n-semantic", "32"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["sampler", "batch", "tokens", "seconds", "tokens_per_s", "speedup_vs_naive_b1"]
    assert set(zip(table["sampler"], table["batch"], strict=True)) == {
        ("naive", 1),
        ("naive", 3),
        ("cached", 1),
        ("cached", 3),
    }
    assert (table.loc[table["batch"] == 3, "tokens"] == 3 * (2 * 4 + 10)).all()
    assert "| cached" in out.with_suffix(".md").read_text()


def test_continuation_forces_the_audio_prefix_and_samples_the_rest(lm):
    rng = np.random.default_rng(5)
    base = prompt(rng, 2, 3, 2, 10)
    prefix = np.array([3, 7, 7, 1])
    cont = Prompt(base.clap, base.tag_ids, base.lyric_ids, base.n_frames, base.n_audio, audio_prefix=prefix)
    thought_ref = rng.integers(0, VOCAB.rvq_size, (2, VOCAB.rvq_levels))
    both = Prompt(base.clap, base.tag_ids, base.lyric_ids, 2, base.n_audio, thought=thought_ref, audio_prefix=prefix)
    cached = sample(lm, [cont, both], PAPER, gens(2))
    for r in cached:
        np.testing.assert_array_equal(r.audio[: len(prefix)], prefix)
        assert len(r.audio) == base.n_audio
    np.testing.assert_array_equal(cached[1].thought, thought_ref)
    # the cached sampler's unconditional rows see the forced tokens exactly as the naive oracle's streams do
    assert tokens(cached) == tokens(sample_naive(lm, [cont, both], PAPER, gens(2)))
    with pytest.raises(ValueError, match="leaves nothing to sample"):
        make_plan(lm, Prompt(base.clap, [], [], 1, 4, audio_prefix=np.arange(4)))
    with pytest.raises(ValueError, match="semantic tokens"):
        make_plan(lm, Prompt(base.clap, [], [], 1, 6, audio_prefix=np.array([VOCAB.n_semantic])))
