"""Dual sampling of the semantic LM (paper Eqs 7-8): a musical thought, then semantic audio tokens.

Decoding is constrained by position: M*L thought ids, the t-th from RVQ level t // M's range,
then `<cot_eos> <aud_bos>` forced, then exactly `n_audio` semantic ids. Every sampled token mixes
log-probabilities of two streams over its legal ids (classifier-free guidance),

    thought:  λ1 log p(c|C)   + (1-λ1) log p(c)     p(c): `unconditional` <cot_bos> thought so far
    audio:    λ2 log p(s|c,C) + (1-λ2) log p(s)     p(s): `unconditional` <aud_bos> audio so far

then divides by the temperature of its part (thought or audio), keeps the top k and draws with the
prompt's own torch Generator, so a prompt's tokens never depend on the batch it was sampled in.
A prompt with a reference thought (music referencing) feeds it instead of sampling it; a prompt
with an audio prefix (continuation) forces its first audio tokens and samples the rest.

`sample` keeps one KV cache over rows [conditional stream per prompt | unconditional stream per
prompt] and advances every row by one token per batched forward. Prompts are left-padded and carry
explicit position ids. The unconditional row of a prompt first holds p(c); at its `<aud_bos>` the
positions from its `<cot_bos>` on are masked out and `<aud_bos>` gets position 3, so the row becomes
p(s) (`unconditional` <aud_bos>) without a second prefill: the three condition markers it keeps are
the ones p(s) starts with. A stream whose guidance scale is exactly 1 is never run, and rows leave
the batch (and the cache) as soon as nothing needs them. `sample_naive` is the same procedure with
a full forward of every sequence per token and stream: the benchmark baseline and test oracle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from transformers import DynamicCache

from musicot.config import ConfigError
from musicot.lm.model import MusicLM
from musicot.lm.sequence import conditions, thought_span, unconditional, unflatten_thought

THOUGHT, AUDIO, FORCED = "thought", "audio", "forced"


@dataclass(frozen=True)
class SampleConfig:
    """Temperatures, guidance scales and top-k of one system (config `lm.sample` plus a variant)."""

    thought_temperature: float
    audio_temperature: float
    thought_cfg: float
    audio_cfg: float
    top_k: int

    @classmethod
    def from_config(cls, section: Mapping, variant: str | None = None) -> SampleConfig:
        """The validated `lm.sample` section, overridden by `variants[variant]` (None: no override)."""
        values = {f.name: section[f.name] for f in fields(cls)}
        if variant is not None:
            variants = section.get("variants", {})
            if variant not in variants:
                raise ConfigError(f"lm.sample.variants has no {variant!r}; known: {sorted(variants)}")
            values.update(variants[variant])
        return cls(**values)

    def temperature(self, part: str) -> float:
        return self.thought_temperature if part == THOUGHT else self.audio_temperature

    def scale(self, part: str) -> float:
        return self.thought_cfg if part == THOUGHT else self.audio_cfg


@dataclass(frozen=True)
class Prompt:
    """One generation request: conditions (text ids already tokenized) and lengths."""

    clap: np.ndarray  # (clap_dim,) CLAP text embedding of the prompt
    tag_ids: Sequence[int]
    lyric_ids: Sequence[int]
    n_frames: int  # M: thought frames, ceil(duration / window)
    n_audio: int  # semantic tokens to sample
    thought: np.ndarray | None = None  # (M, L) reference codes: fed instead of sampled
    audio_prefix: np.ndarray | None = None  # 0-based semantic tokens forced at the audio's start (continuation)


@dataclass(frozen=True)
class Sampled:
    """What one prompt produced."""

    thought: np.ndarray | None  # (M, L) RVQ codes; None for the base system
    audio: np.ndarray  # (n_audio,) 0-based semantic tokens


def prompt_lengths(duration_s: float, window_s: float, token_rate: float) -> tuple[int, int]:
    """(thought frames M, audio tokens) for `duration_s` seconds of music."""
    return max(1, math.ceil(duration_s / window_s - 1e-9)), max(1, round(duration_s * token_rate))


@dataclass(frozen=True)
class Step:
    """One position to generate: sampled from ids [lo, hi) of its part, or FORCED to lo."""

    part: str
    lo: int
    hi: int


@dataclass
class Plan:
    """What one prompt's streams start with and every position after."""

    cond: list[int]  # known prefix of the conditional stream
    uncond: list[int]  # `unconditional` + <cot_bos> (thought sampled) or <aud_bos>
    steps: list[Step]
    reference: np.ndarray | None
    audio_start: int  # index into steps of the first audio token (forced or sampled)
    generated: list[int] = field(default_factory=list)


def make_plan(model: MusicLM, prompt: Prompt) -> Plan:
    """Validate `prompt` against `model` and lay out its sequence."""
    vocab = model.vocab
    clap = np.asarray(prompt.clap)
    if clap.shape != (model.clap_dim,):
        raise ValueError(f"prompt CLAP embedding has shape {clap.shape}, the model expects ({model.clap_dim},)")
    text = [*prompt.tag_ids, *prompt.lyric_ids]
    if text and not (min(text) >= 0 and max(text) < vocab.n_text):
        raise ValueError(f"prompt tag/lyric ids must be text ids in [0, {vocab.n_text})")
    if prompt.n_audio < 1:
        raise ValueError(f"n_audio must be >= 1, got {prompt.n_audio}")
    cond = conditions(vocab, prompt.tag_ids, prompt.lyric_ids)
    aud_bos, cot_bos = vocab.special("<aud_bos>"), vocab.special("<cot_bos>")
    steps: list[Step] = []
    reference = None
    if not model.uses_thought:
        if prompt.thought is not None:
            raise ValueError(f"the {model.system!r} LM has no musical thought: it cannot take a reference thought")
        cond.append(aud_bos)
    elif prompt.thought is not None:
        reference = np.asarray(prompt.thought, dtype=np.int64)
        if reference.shape != (prompt.n_frames, vocab.rvq_levels):
            raise ValueError(
                f"reference thought {reference.shape} != (n_frames, levels) {prompt.n_frames, vocab.rvq_levels}"
            )
        cond += [*thought_span(vocab, reference), aud_bos]
    else:
        if prompt.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {prompt.n_frames}")
        cond.append(cot_bos)
        steps += [
            Step(THOUGHT, *vocab.rvq_range(t // prompt.n_frames)) for t in range(prompt.n_frames * vocab.rvq_levels)
        ]
        steps += [Step(FORCED, i, i + 1) for i in (vocab.special("<cot_eos>"), aud_bos)]
    audio_start = len(steps)
    prefix = np.asarray([] if prompt.audio_prefix is None else prompt.audio_prefix, dtype=np.int64)
    lo, hi = vocab.semantic_range()
    if len(prefix) >= prompt.n_audio:
        raise ValueError(
            f"an audio prefix of {len(prefix)} tokens leaves nothing to sample of n_audio {prompt.n_audio}"
        )
    if len(prefix) and not (prefix.min() >= 0 and prefix.max() < hi - lo):
        raise ValueError(f"audio prefix tokens must be semantic tokens in [0, {hi - lo})")
    steps += [Step(FORCED, lo + int(tok), lo + int(tok) + 1) for tok in prefix]
    steps += [Step(AUDIO, lo, hi)] * (prompt.n_audio - len(prefix))
    length = len(cond) + len(steps) - 1  # the last token is never fed
    if length > model.llama.config.max_position_embeddings:
        raise ValueError(
            f"a prompt needs {length} positions, the LM was built for {model.llama.config.max_position_embeddings}: "
            "shorten the lyrics or the duration"
        )
    uncond = [*unconditional(vocab), cot_bos if steps[0].part == THOUGHT else aud_bos]
    return Plan(cond, uncond, steps, reference, audio_start)


def guided_logprobs(
    cond: torch.Tensor, uncond: torch.Tensor | None, scale: float, temperature: float, top_k: int
) -> torch.Tensor:
    """Log-probabilities to sample from, given the two streams' logits over the legal ids only.

    CFG mixes log_softmax of each stream (Eqs 7-8), then the temperature divides, then top-k.
    """
    logp = torch.log_softmax(cond.float(), dim=-1)
    if uncond is not None:
        logp = scale * logp + (1.0 - scale) * torch.log_softmax(uncond.float(), dim=-1)
    logits = logp / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return torch.log_softmax(logits, dim=-1)


def next_token(
    step: Step,
    cfg: SampleConfig,
    cond_logits: torch.Tensor,
    uncond_logits: torch.Tensor | None,
    generator: torch.Generator,
) -> int:
    """Draw one id of `step` from full-vocabulary logits (ids outside [lo, hi) have probability 0)."""
    if step.part == FORCED:
        return step.lo
    scale = cfg.scale(step.part)
    uncond = uncond_logits[step.lo : step.hi] if scale != 1.0 else None
    logp = guided_logprobs(cond_logits[step.lo : step.hi], uncond, scale, cfg.temperature(step.part), cfg.top_k)
    probs = logp.exp().to(generator.device)
    return step.lo + int(torch.multinomial(probs, 1, generator=generator))


def guided_until(plan: Plan, cfg: SampleConfig) -> int:
    """Number of steps after which no step samples with guidance (the unconditional row can leave)."""
    guided = [k for k, s in enumerate(plan.steps) if s.part != FORCED and cfg.scale(s.part) != 1.0]
    return guided[-1] + 1 if guided else 0


def result(model: MusicLM, prompt: Prompt, plan: Plan) -> Sampled:
    vocab, ids = model.vocab, np.asarray(plan.generated, dtype=np.int64)
    audio = ids[-prompt.n_audio :] - vocab.semantic_base
    if not model.uses_thought:
        return Sampled(None, audio)
    if plan.reference is not None:
        return Sampled(plan.reference.copy(), audio)
    return Sampled(unflatten_thought(vocab, ids[: prompt.n_frames * vocab.rvq_levels], prompt.n_frames), audio)


def per_prompt_generators(generators: torch.Generator | Sequence[torch.Generator], n: int) -> list[torch.Generator]:
    """One generator per prompt; a single one seeds n new ones (then results depend on prompt order)."""
    if isinstance(generators, torch.Generator):
        seeds = torch.randint(0, 2**62, (n,), generator=generators, device=generators.device).tolist()
        return [torch.Generator(generators.device).manual_seed(s) for s in seeds]
    if len(generators) != n:
        raise ValueError(f"{len(generators)} generators for {n} prompts")
    return list(generators)


@dataclass
class Row:
    """One stream of the batch: which prompt, conditional or not, and its next position id."""

    prompt: int
    cond: bool
    position: int


@torch.inference_mode()
def sample(
    model: MusicLM,
    prompts: Sequence[Prompt],
    cfg: SampleConfig,
    generators: torch.Generator | Sequence[torch.Generator],
) -> list[Sampled]:
    """Sample every prompt together, one batched forward with a KV cache per generated position."""
    if not prompts:
        return []
    device = next(model.parameters()).device
    gens = per_prompt_generators(generators, len(prompts))
    plans = [make_plan(model, p) for p in prompts]
    claps = torch.as_tensor(np.stack([np.asarray(p.clap, dtype=np.float32) for p in prompts]), device=device)

    until = [guided_until(plan, cfg) for plan in plans]
    rows = [Row(i, True, len(plan.cond)) for i, plan in enumerate(plans)]
    rows += [Row(i, False, len(plan.uncond)) for i, plan in enumerate(plans) if until[i] > 0]
    prefixes = [plans[r.prompt].cond if r.cond else plans[r.prompt].uncond for r in rows]
    width = max(map(len, prefixes))
    ids = torch.full((len(rows), width), model.vocab.special("<pad>"), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, prefix in enumerate(prefixes):
        ids[k, width - len(prefix) :] = torch.tensor(prefix)
        mask[k, width - len(prefix) :] = 1
    cot_bos_at = width - 1  # cache index of the p(c) rows' <cot_bos> (the last prefix token)
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.llama.config)

    def forward(ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        index = torch.tensor([r.prompt for r in rows], device=device)
        keep = torch.tensor([r.cond for r in rows], device=device)
        out = model(ids, claps[index], keep, mask, positions, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    logits = forward(ids, positions)
    n_uncond_prefix, aud_bos = len(unconditional(model.vocab)), model.vocab.special("<aud_bos>")
    while True:
        row_of = {(r.prompt, r.cond): k for k, r in enumerate(rows)}
        tokens: dict[int, int] = {}
        for i in sorted({r.prompt for r in rows}):
            plan = plans[i]
            step = plan.steps[len(plan.generated)]
            k_unc = row_of.get((i, False))
            uncond = logits[k_unc] if k_unc is not None else None
            tokens[i] = next_token(step, cfg, logits[row_of[(i, True)]], uncond, gens[i])
            plan.generated.append(tokens[i])

        done = [len(plan.generated) for plan in plans]
        keep_rows = [
            k
            for k, r in enumerate(rows)
            if done[r.prompt] < len(plans[r.prompt].steps) and (r.cond or done[r.prompt] < until[r.prompt])
        ]
        if not keep_rows:
            break
        if len(keep_rows) < len(rows):
            index = torch.tensor(keep_rows, device=device)
            cache.batch_select_indices(index)
            mask = mask[index]
            rows = [rows[k] for k in keep_rows]

        step_ids, step_pos = [], []
        for k, r in enumerate(rows):
            token = tokens[r.prompt]
            if not r.cond and token == aud_bos and plans[r.prompt].uncond[-1] != aud_bos:
                mask[k, cot_bos_at:] = 0  # p(c) -> p(s): forget <cot_bos> .. <cot_eos>
                r.position = n_uncond_prefix
            step_ids.append(token)
            step_pos.append(r.position)
            r.position += 1
        mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
        logits = forward(torch.tensor(step_ids, device=device)[:, None], torch.tensor(step_pos, device=device)[:, None])
    return [result(model, p, plan) for p, plan in zip(prompts, plans, strict=True)]


def _last_logits(model: MusicLM, ids: list[int], clap: torch.Tensor, keep: bool) -> torch.Tensor:
    device = clap.device
    keep_t = torch.tensor([keep], device=device)
    return model(torch.tensor([ids], device=device), clap[None], keep_t, logits_to_keep=1).logits[0, -1]


@torch.inference_mode()
def sample_naive(
    model: MusicLM,
    prompts: Sequence[Prompt],
    cfg: SampleConfig,
    generators: torch.Generator | Sequence[torch.Generator],
) -> list[Sampled]:
    """`sample` without a cache or batching: one prompt at a time, a full forward per token and stream."""
    device = next(model.parameters()).device
    gens = per_prompt_generators(generators, len(prompts))
    vocab = model.vocab
    out = []
    for prompt, gen in zip(prompts, gens, strict=True):
        plan = make_plan(model, prompt)
        clap = torch.as_tensor(np.asarray(prompt.clap, dtype=np.float32), device=device)
        seq = list(plan.cond)
        for step in plan.steps:
            cond_logits = uncond_logits = None
            if step.part != FORCED:
                cond_logits = _last_logits(model, seq, clap, True)
                if cfg.scale(step.part) != 1.0:
                    # The unconditional stream of a part sees that part's tokens so far, forced ones included.
                    same_part = (
                        plan.generated[: plan.audio_start - 2]
                        if step.part == THOUGHT
                        else plan.generated[plan.audio_start :]
                    )
                    bos = vocab.special("<cot_bos>" if step.part == THOUGHT else "<aud_bos>")
                    uncond_logits = _last_logits(model, [*unconditional(vocab), bos, *same_part], clap, False)
            token = next_token(step, cfg, cond_logits, uncond_logits, gen)
            plan.generated.append(token)
            seq.append(token)
        out.append(result(model, prompt, plan))
    return out
