"""The LM's one vocabulary: disjoint id ranges for text, specials, RVQ codes per level and semantic tokens.

    [0, n_text)                       text subwords (the WordPiece tokenizer's own ids, its [PAD] etc. included)
    [n_text, +len(SPECIALS))          <pad> <clap> <tags> <lyrics> <cot_bos> <cot_eos> <aud_bos> <aud_eos>
    then L ranges of K ids            RVQ level 0 owns the first K, level 1 the next K, ...
    then n_semantic ids               semantic audio tokens (BEST-RQ k-means codes)

A sequence (`musicot.lm.sequence`) is `<clap> <tags> tags... <lyrics> lyrics... <cot_bos> thought
<cot_eos> <aud_bos> audio... <aud_eos>`; the base system has no `<cot_bos> ... <cot_eos>`. The
`<clap>` position carries the projected CLAP embedding (or the learned null vector) instead of a
token embedding (`musicot.lm.model`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SPECIALS = ("<pad>", "<clap>", "<tags>", "<lyrics>", "<cot_bos>", "<cot_eos>", "<aud_bos>", "<aud_eos>")


@dataclass(frozen=True)
class Vocab:
    """Sizes of each range; every id is derived from them, so two Vocabs with equal sizes agree."""

    n_text: int
    rvq_levels: int
    rvq_size: int
    n_semantic: int

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 1:
                raise ValueError(f"Vocab.{name} must be >= 1, got {value}")

    @property
    def special_base(self) -> int:
        return self.n_text

    @property
    def rvq_base(self) -> int:
        return self.n_text + len(SPECIALS)

    @property
    def semantic_base(self) -> int:
        return self.rvq_base + self.rvq_levels * self.rvq_size

    @property
    def size(self) -> int:
        return self.semantic_base + self.n_semantic

    def special(self, name: str) -> int:
        """Id of one of `SPECIALS`."""
        return self.special_base + SPECIALS.index(name)

    def rvq_range(self, level: int) -> tuple[int, int]:
        """[lo, hi) ids of RVQ level `level` (0-based)."""
        if not 0 <= level < self.rvq_levels:
            raise ValueError(f"RVQ level {level} outside [0, {self.rvq_levels})")
        lo = self.rvq_base + level * self.rvq_size
        return lo, lo + self.rvq_size

    def semantic_range(self) -> tuple[int, int]:
        return self.semantic_base, self.size

    def text_range(self) -> tuple[int, int]:
        return 0, self.n_text

    def ranges(self) -> dict[str, tuple[int, int]]:
        """Every named range, for checks and for the saved vocab.json."""
        out = {"text": self.text_range(), "specials": (self.special_base, self.rvq_base)}
        out.update({f"rvq_l{level}": self.rvq_range(level) for level in range(self.rvq_levels)})
        out["semantic"] = self.semantic_range()
        return out

    def to_json(self) -> dict:
        return {**asdict(self), "specials": list(SPECIALS), "ranges": {k: list(v) for k, v in self.ranges().items()}}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        vocab = cls(**{k: int(data[k]) for k in ("n_text", "rvq_levels", "rvq_size", "n_semantic")})
        if list(data.get("specials", SPECIALS)) != list(SPECIALS):
            raise ValueError(f"vocab specials {data['specials']} differ from this code's {list(SPECIALS)}")
        return vocab
