"""CTC fine-tuning of the SSL encoder on sung lyric lines (the paper's pronunciation step).

Data: every timed lyric line of the train split, as the feature rows of the mix from `context_s`
before the line to `context_s` after it; target = the line's characters (`CharVocab`, from the
train lines' text). Songs without timed lyrics are no CTC data. A batch of step k: `batch_size`
random lines (padded, with an attention mask) and SpecAugment-style span masks, drawn from
`step_rng(seed, CTC_STREAM, k)`. Scored by the character error rate of greedy decoding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2BertForCTC, Wav2Vec2BertModel

from musicot import distributed
from musicot.prep.lyrics import align
from musicot.semantic.config import CtcConfig
from musicot.semantic.data import CTC_STREAM, line_span, span_mask
from musicot.semantic.model import BLANK_ID, ctc_logits, ctc_model
from musicot.training import (
    LoopConfig,
    NoLearningSignal,
    cosine_schedule,
    discard_stale_state,
    seed_everything,
    step_rng,
    train_loop,
)

VOCAB_FILE = "vocab.json"
BLANK = "<blank>"


class CharVocab:
    """Characters of the training lyrics; id 0 is the CTC blank. Unknown characters are dropped from targets."""

    def __init__(self, chars: Sequence[str]) -> None:
        self.chars = [BLANK, *chars]
        self.ids = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> CharVocab:
        return cls(sorted(set("".join(texts))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.ids[c] for c in text if c in self.ids and c != BLANK]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids if i != BLANK_ID)

    def save(self, folder: Path) -> None:
        (Path(folder) / VOCAB_FILE).write_text(json.dumps(self.chars[1:]))

    @classmethod
    def load(cls, folder: Path) -> CharVocab:
        return cls(json.loads((Path(folder) / VOCAB_FILE).read_text()))


def greedy_decode(logits: torch.Tensor | np.ndarray, length: int | None = None) -> list[int]:
    """Best path of one (frames, vocab) logit matrix: argmax per frame, repeats merged, blanks dropped."""
    best = np.asarray(torch.as_tensor(logits).argmax(-1))[:length]
    merged = [int(c) for i, c in enumerate(best) if i == 0 or c != best[i - 1]]
    return [c for c in merged if c != BLANK_ID]


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate: total character edits (Levenshtein) over total reference characters."""
    edits = sum(align(list(r), list(h))[0] for r, h in zip(refs, hyps, strict=True))
    total = sum(len(r) for r in refs)
    return edits / total if total else float("nan")


@dataclass
class Lines:
    """Feature rows (normalised) and texts of lyric lines."""

    features: list[np.ndarray]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def line_examples(lines: pd.DataFrame, songs: Mapping[str, np.ndarray], context_s: float, frame_s: float) -> Lines:
    """The lines of `lines` (see `data.timed_lines`) whose song is in `songs`, cut from its feature rows."""
    feats, texts = [], []
    for r in lines.itertuples(index=False):
        rows = songs.get(str(r.song_id))
        if rows is None:
            continue
        a, b = line_span(float(r.start), float(r.end), context_s, frame_s, len(rows))
        feats.append(rows[a:b])
        texts.append(str(r.text))
    return Lines(feats, texts)


def pad(features: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, longest, dim) zero-padded features and the (batch, longest) attention mask."""
    longest = max(len(f) for f in features)
    x = np.zeros((len(features), longest, features[0].shape[1]), np.float32)
    attention = np.zeros((len(features), longest), np.int64)
    for i, f in enumerate(features):
        x[i, : len(f)], attention[i, : len(f)] = f, 1
    return torch.from_numpy(x), torch.from_numpy(attention)


def ctc_batch(lines: Lines, vocab: CharVocab, cfg: CtcConfig, rng: np.random.Generator):
    """(features, attention mask, spec mask, targets (padded to the longest), target lengths) of one draw."""
    picks = rng.integers(len(lines), size=cfg.batch_size)
    x, attention = pad([lines.features[i] for i in picks])
    if cfg.mask_prob > 0:
        mask = torch.from_numpy(span_mask(tuple(attention.shape), cfg.mask_prob, cfg.mask_span, rng)) & attention.bool()
    else:
        mask = torch.zeros(attention.shape, dtype=torch.bool)
    targets = [vocab.encode(lines.texts[i]) for i in picks]
    # padded (B, S), not concatenated: every tensor of a batch then splits along dim 0 over processes
    padded = torch.zeros(len(targets), max(map(len, targets), default=0), dtype=torch.long)
    for i, t in enumerate(targets):
        padded[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    return x, attention, mask, padded, torch.tensor([len(t) for t in targets], dtype=torch.long)


def ctc_loss(model: Wav2Vec2BertForCTC, batch) -> torch.Tensor:
    """Mean (per target character) CTC loss of a batch; impossible alignments count zero."""
    x, attention, mask, targets, target_lengths = batch
    log_probs = ctc_logits(model, x, attention, mask).log_softmax(-1).transpose(0, 1)
    return F.ctc_loss(
        log_probs, targets, attention.sum(1), target_lengths, blank=BLANK_ID, reduction="mean", zero_infinity=True
    )


@torch.no_grad()
def transcribe(model: Wav2Vec2BertForCTC, lines: Lines, vocab: CharVocab, batch_size: int) -> list[str]:
    """Greedy transcripts of every line (eval mode expected)."""
    out = []
    for i in range(0, len(lines), batch_size):
        chunk = lines.features[i : i + batch_size]
        x, attention = pad(chunk)
        device = next(model.parameters()).device
        logits = ctc_logits(model, x.to(device), attention.to(device), None).cpu()
        out += [vocab.decode(greedy_decode(logits[j], len(f))) for j, f in enumerate(chunk)]
    return out


def require_lines(train: Lines, lines_path: str) -> None:
    """Refuse CTC without timed lyrics: it would train a head on nothing."""
    if not len(train):
        raise NoLearningSignal(
            f"semantic.ctc.enabled is true but no train-split song has timed lyric lines in {lines_path} "
            "(lines with start/end times and text): CTC fine-tuning has nothing to learn from. Set "
            "semantic.ctc.enabled: false, or give the corpus timed lyrics (e.g. ASR with line times in prep)"
        )


def train_ctc(
    encoder: Wav2Vec2BertModel,
    train: Lines,
    valid: Lines,
    vocab: CharVocab,
    cfg: CtcConfig,
    state_dir: Path,
    seed: int,
    run: dict,
) -> tuple[Wav2Vec2BertForCTC, dict]:
    """Fine-tune a CTC model started from `encoder` on `train` lines; CER on `valid` at every evaluation."""
    discard_stale_state(state_dir, run)
    seed_everything(seed)  # the new head's initial weights are part of the seeded run
    model = ctc_model(encoder, len(vocab)).to(distributed.device())  # under torchrun: this process' own GPU

    def evaluate(m: Wav2Vec2BertForCTC) -> dict[str, float]:
        if not len(valid):
            return {}
        return {"cer": cer(valid.texts, transcribe(m, valid, vocab, cfg.batch_size))}

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    scheduler = cosine_schedule(optimizer, cfg.warmup_steps, cfg.steps)
    loop = LoopConfig(cfg.steps, cfg.eval_every, cfg.checkpoint_every, cfg.log_every, seed)
    history = train_loop(
        model,
        optimizer,
        lambda step: ctc_batch(train, vocab, cfg, step_rng(seed, CTC_STREAM, step)),
        ctc_loss,
        loop,
        state_dir,
        evaluate=evaluate,
        scheduler=scheduler,
    )
    return model.cpu(), history
