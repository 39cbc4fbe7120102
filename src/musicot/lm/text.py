"""The LM's text conditions: a BERT-style WordPiece tokenizer and the tag and lyric strings it reads.

The tokenizer is trained offline with the `tokenizers` library on the corpus lyrics and captions
and the tag vocabulary, saved as `tokenizer.json` and loaded with transformers'
`PreTrainedTokenizerFast`. Section tags (`[VERSE]`, `[CHORUS]`, ...) are added tokens, so they
stay single tokens whatever the lyrics around them.

    python -m musicot.lm.text --config CFG --tracks results/corpus/tracks.parquet \
        --lyrics results/prep/lyrics.parquet --structure results/prep/structure.parquet --out results/lm/tokenizer
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from musicot.config import load_config
from musicot.prep.tags import FAMILIES, load_vocabulary

log = logging.getLogger("musicot.lm.text")

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Our structure labels (musicot.prep.structure) plus the usual names a lyric sheet may carry.
SECTION_LABELS = ("intro", "verse", "prechorus", "chorus", "bridge", "break", "solo", "inst", "outro")
TOKENIZER_FILE = "tokenizer.json"


def section_token(label: str) -> str:
    """`[VERSE]` for "verse"; labels outside SECTION_LABELS keep their name, upper-cased."""
    return "[" + str(label).strip().upper().replace(" ", "_").replace("-", "") + "]"


def section_tokens() -> list[str]:
    return [section_token(label) for label in SECTION_LABELS]


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """A lower-casing WordPiece tokenizer (BERT's normaliser and pre-tokeniser) trained on `texts`."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[*BERT_SPECIALS, *section_tokens()]
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Added (special) tokens are matched before normalisation and pre-tokenisation: never split.
    tok.add_special_tokens(section_tokens())
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        additional_special_tokens=section_tokens(),
    )


def encode(tokenizer: PreTrainedTokenizerFast, text: str, limit: int | None = None) -> list[int]:
    """Subword ids of `text` without [CLS]/[SEP], cut to the first `limit`."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    return ids if limit is None else ids[:limit]


def tags_text(tags: Mapping[str, Sequence[str]]) -> str:
    """`genre: rock; mood: happy; instrument: bass, drums` in FAMILIES order (the LM's tag condition)."""
    parts = [f"{family}: {', '.join(tags[family])}" for family in FAMILIES if tags.get(family)]
    parts += [f"{family}: {', '.join(values)}" for family, values in tags.items() if family not in FAMILIES and values]
    return "; ".join(parts)


def lyrics_text(lines: pd.DataFrame, sections: pd.DataFrame) -> str:
    """One song's lyric sheet: each section's tag, then the lines that start inside it.

    `lines` (text, start) and `sections` (label, start, end) of one song. Lines before the first
    section or without sections at all are written untagged; sections without lines keep their
    tag (an instrumental break is part of the sheet).
    """
    lines = lines.sort_values("start")
    if sections.empty:
        return "\n".join(lines["text"].astype(str))
    out: list[str] = []
    sections = sections.sort_values("start").reset_index(drop=True)
    starts = lines["start"].to_numpy()
    texts = lines["text"].astype(str).to_numpy()
    out += [t for t, s in zip(texts, starts, strict=True) if s < sections["start"].iloc[0]]
    for i, sec in sections.iterrows():
        end = sections["start"].iloc[i + 1] if i + 1 < len(sections) else float("inf")
        out.append(section_token(sec["label"]))
        out += [t for t, s in zip(texts, starts, strict=True) if sec["start"] <= s < end]
    return "\n".join(out)


def corpus_texts(tracks: pd.DataFrame, lyrics: pd.DataFrame) -> list[str]:
    """Everything the tokenizer learns from: lyric lines, captions and the tag vocabulary (with families)."""
    texts = [str(t) for t in lyrics["text"] if str(t).strip()]
    texts += [str(c) for c in tracks.get("caption", pd.Series(dtype=str)) if str(c).strip()]
    for family, tags in load_vocabulary().items():
        texts += [f"{family}: {tag}" for tag in tags]
    return texts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="config YAML path or inline JSON")
    parser.add_argument("--tracks", type=Path, required=True)
    parser.add_argument("--lyrics", type=Path, required=True, help="results/prep/lyrics.parquet")
    parser.add_argument("--out", type=Path, required=True, help="folder for tokenizer.json (+ transformers files)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_config(args.config)["lm"]["tokenizer"]
    tracks, lyrics = pd.read_parquet(args.tracks), pd.read_parquet(args.lyrics)
    # Held-out songs' lyrics stay out: the tokenizer must not have seen the evaluation texts.
    train_ids = set(tracks.loc[tracks["split"] == "train", "song_id"])
    texts = corpus_texts(tracks[tracks["song_id"].isin(train_ids)], lyrics[lyrics["song_id"].isin(train_ids)])
    tokenizer = train_tokenizer(texts, cfg["vocab_size"], cfg["min_frequency"])
    tokenizer.save_pretrained(args.out)
    stats = {"vocab_size": len(tokenizer), "texts": len(texts), "section_tokens": section_tokens()}
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2))
    log.info("tokenizer: %d tokens from %d texts", len(tokenizer), len(texts))


if __name__ == "__main__":
    main()
