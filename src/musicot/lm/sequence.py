"""Token sequences of the semantic LM (DESIGN.md section 5), built from ids of `musicot.lm.vocab`.

    <clap> <tags> tag subwords <lyrics> lyric subwords      the conditions C
    <cot_bos> thought (M*L RVQ ids, coarse to fine) <cot_eos>  the musical thought c (musicot only)
    <aud_bos> semantic audio ids <aud_eos>                   the audio tokens s

A dropped condition keeps its marker and loses its content (the `<clap>` position then holds the
learned null vector, `musicot.lm.model`), so the unconditional streams the sampler needs are
ordinary sequences the LM has seen: `<clap> <tags> <lyrics> <cot_bos> ...` for p(c) and
`<clap> <tags> <lyrics> <aud_bos> ...` (neither conditions nor thought) for p(s).
Loss covers the thought (its RVQ ids and `<cot_eos>`) and the audio (its ids and `<aud_eos>`),
never the conditions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from musicot.lm.vocab import Vocab
from musicot.rvq.codes import flatten_coarse_to_fine, from_vocab_ids, to_vocab_ids, unflatten_coarse_to_fine

IGNORE = -100  # label of positions the loss skips (torch's cross_entropy default)
# Per-position part, for losses reported separately on thought and audio tokens.
PART_CONDITION, PART_THOUGHT, PART_AUDIO = 0, 1, 2


def audio_token_count(seconds: float, config: Mapping) -> int:
    """Semantic tokens in `seconds` of audio at the rate the `semantic` config section gives (10 ms x 4: 25 Hz)."""
    semantic = config["semantic"]
    return round(seconds * 1000.0 / (semantic["hop_ms"] * semantic["stack"]))


def conditions(vocab: Vocab, tags: Sequence[int], lyrics: Sequence[int]) -> list[int]:
    """`<clap> <tags> tags... <lyrics> lyrics...` (pass empty lists for dropped conditions)."""
    return [vocab.special("<clap>"), vocab.special("<tags>"), *tags, vocab.special("<lyrics>"), *lyrics]


def unconditional(vocab: Vocab) -> list[int]:
    """The conditions with every one dropped (the `<clap>` row must also get keep_clap=False)."""
    return conditions(vocab, [], [])


def flatten_thought(vocab: Vocab, codes: np.ndarray) -> list[int]:
    """(M, L) RVQ codes -> M*L LM ids, coarse to fine (`musicot.rvq.codes`), each level in its own range."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != vocab.rvq_levels:
        raise ValueError(f"thought codes must be (M, {vocab.rvq_levels}), got {codes.shape}")
    return (flatten_coarse_to_fine(to_vocab_ids(codes, vocab.rvq_size)) + vocab.rvq_base).tolist()


def unflatten_thought(vocab: Vocab, ids: Sequence[int], n_frames: int) -> np.ndarray:
    """Inverse of `flatten_thought`: M*L ids -> (M, L) codes; raises on an id outside its level's range."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) != n_frames * vocab.rvq_levels:
        raise ValueError(f"{len(ids)} thought ids for {n_frames} frames x {vocab.rvq_levels} levels")
    return from_vocab_ids(unflatten_coarse_to_fine(ids - vocab.rvq_base, vocab.rvq_levels), vocab.rvq_size)


def thought_span(vocab: Vocab, codes: np.ndarray) -> list[int]:
    """`<cot_bos>` flattened thought `<cot_eos>`."""
    return [vocab.special("<cot_bos>"), *flatten_thought(vocab, codes), vocab.special("<cot_eos>")]


def audio_ids(vocab: Vocab, tokens: np.ndarray) -> list[int]:
    """Semantic tokens (0-based k-means codes) -> their LM ids."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= vocab.n_semantic):
        raise ValueError(f"semantic tokens outside [0, {vocab.n_semantic})")
    return (tokens + vocab.semantic_base).tolist()


@dataclass(frozen=True)
class Example:
    """One training sequence: ids, next-token labels (IGNORE where no loss) and each label's part."""

    ids: np.ndarray
    labels: np.ndarray
    parts: np.ndarray
    keep_clap: bool


def example(
    vocab: Vocab,
    tags: Sequence[int],
    lyrics: Sequence[int],
    thought: np.ndarray | None,
    audio: np.ndarray,
    keep_clap: bool = True,
    end: bool = True,
) -> Example:
    """The sequence of one song (conditions already dropped by the caller: pass [] and keep_clap=False).

    `thought` None gives a sequence without thought (the base system, and the unconditional
    audio stream). `end` False leaves out `<aud_eos>` (a crop of a longer song does not end there).
    Labels are aligned with `ids` (label[t] is the target of position t, i.e. ids[t + 1]).
    """
    cond = conditions(vocab, tags, lyrics)
    ids, parts = list(cond), [PART_CONDITION] * len(cond)
    if thought is not None:
        span = thought_span(vocab, thought)
        ids += span
        parts += [PART_CONDITION] + [PART_THOUGHT] * (len(span) - 1)  # <cot_bos> itself is given
    aud = [vocab.special("<aud_bos>"), *audio_ids(vocab, audio)] + ([vocab.special("<aud_eos>")] if end else [])
    ids += aud
    parts += [PART_CONDITION] + [PART_AUDIO] * (len(aud) - 1)  # <aud_bos> follows <cot_eos> deterministically
    ids_arr = np.asarray(ids, dtype=np.int64)
    target_part = np.asarray([*parts[1:], PART_CONDITION], dtype=np.int64)  # the part of the *next* token
    labels = np.where(target_part != PART_CONDITION, np.append(ids_arr[1:], IGNORE), IGNORE)
    return Example(ids_arr, labels.astype(np.int64), target_part, keep_clap)


def pad_batch(examples: Sequence[Example], pad_id: int) -> dict[str, np.ndarray]:
    """Right-padded (B, T) ids / labels / parts and the attention mask."""
    length = max(len(e.ids) for e in examples)
    batch = {
        "ids": np.full((len(examples), length), pad_id, dtype=np.int64),
        "labels": np.full((len(examples), length), IGNORE, dtype=np.int64),
        "parts": np.full((len(examples), length), PART_CONDITION, dtype=np.int64),
        "mask": np.zeros((len(examples), length), dtype=np.int64),
        "keep_clap": np.asarray([e.keep_clap for e in examples], dtype=bool),
    }
    for row, e in enumerate(examples):
        n = len(e.ids)
        batch["ids"][row, :n], batch["labels"][row, :n], batch["parts"][row, :n] = e.ids, e.labels, e.parts
        batch["mask"][row, :n] = 1
    return batch
