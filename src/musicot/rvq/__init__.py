"""Residual VQ tokenizer of the musical thought (CLAP window embeddings -> L codes per window)."""

from musicot.rvq.codes import (
    flatten_coarse_to_fine,
    from_vocab_ids,
    to_vocab_ids,
    unflatten_coarse_to_fine,
    vocab_size,
)
from musicot.rvq.model import (
    RvqConfig,
    decode,
    encode,
    is_initialised,
    load_rvq,
    metrics,
    read_rvq_config,
    save_rvq,
    train_rvq,
)

__all__ = [
    "RvqConfig",
    "decode",
    "encode",
    "flatten_coarse_to_fine",
    "from_vocab_ids",
    "is_initialised",
    "load_rvq",
    "metrics",
    "read_rvq_config",
    "save_rvq",
    "to_vocab_ids",
    "train_rvq",
    "unflatten_coarse_to_fine",
    "vocab_size",
]
