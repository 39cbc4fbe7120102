"""The semantic LM: `transformers.LlamaForCausalLM` plus the CLAP prefix (Eq. 3's c_clap).

The `<clap>` position of every sequence carries `clap_proj(clap embedding)`, or the learned
`clap_null` vector where the condition is dropped (CFG); every other position is an ordinary
token embedding. Everything else is plain Llama, so the saved model loads back with transformers'
own `LlamaForCausalLM.from_pretrained`; the prefix lives beside it in `prefix.safetensors`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from musicot.lm.vocab import Vocab

PREFIX_FILE = "prefix.safetensors"
LM_FILE = "lm.json"  # vocab, CLAP dim and system beside the Llama config


@dataclass(frozen=True)
class ModelSize:
    """The Llama shape (config `lm.model`)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int
    rope_theta: float = 10000.0

    def llama_config(self, vocab: Vocab) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab.size,
            hidden_size=self.hidden,
            intermediate_size=self.intermediate,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            num_key_value_heads=self.kv_heads,
            max_position_embeddings=self.max_positions,
            rope_theta=self.rope_theta,
            pad_token_id=vocab.special("<pad>"),
            bos_token_id=vocab.special("<clap>"),
            eos_token_id=vocab.special("<aud_eos>"),
            tie_word_embeddings=False,
        )


class MusicLM(nn.Module):
    """Llama over the joint vocabulary with a projected CLAP prefix at each `<clap>` position."""

    def __init__(self, llama: LlamaForCausalLM, vocab: Vocab, clap_dim: int, system: str = "musicot") -> None:
        super().__init__()
        self.llama = llama
        self.vocab = vocab
        self.clap_dim = clap_dim
        self.system = system
        hidden = llama.config.hidden_size
        self.clap_proj = nn.Linear(clap_dim, hidden)
        # Same scale as the token embeddings, so a dropped condition starts as an ordinary input.
        self.clap_null = nn.Parameter(torch.randn(hidden) * llama.config.initializer_range)

    @classmethod
    def build(cls, size: ModelSize, vocab: Vocab, clap_dim: int, system: str = "musicot") -> MusicLM:
        return cls(LlamaForCausalLM(size.llama_config(vocab)), vocab, clap_dim, system)

    @property
    def uses_thought(self) -> bool:
        return self.system == "musicot"

    def embed(self, ids: torch.Tensor, clap: torch.Tensor, keep_clap: torch.Tensor) -> torch.Tensor:
        """(B, T, H) input embeddings: tokens, with each row's `<clap>` positions replaced by its prefix.

        `clap` (B, clap_dim) embeddings, `keep_clap` (B,) bool: False puts the null vector there.
        """
        emb = self.llama.get_input_embeddings()(ids)
        prefix = self.clap_proj(clap.to(self.clap_proj.weight.dtype))
        prefix = torch.where(keep_clap[:, None], prefix, self.clap_null.expand_as(prefix))
        at = (ids == self.vocab.special("<clap>"))[..., None]
        return torch.where(at, prefix[:, None, :].to(emb.dtype), emb)

    def forward(
        self,
        ids: torch.Tensor,
        clap: torch.Tensor,
        keep_clap: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache=None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ):
        """Llama's output (`.logits`, `.cache` when `use_cache`) for token ids with the CLAP prefix."""
        return self.llama(
            inputs_embeds=self.embed(ids, clap, keep_clap),
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def save_lm(model: MusicLM, out: Path) -> None:
    """`save_pretrained` of the Llama (config.json + model.safetensors), the prefix and lm.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.llama.save_pretrained(out)
    tensors = {"clap_proj.weight": model.clap_proj.weight, "clap_proj.bias": model.clap_proj.bias}
    tensors["clap_null"] = model.clap_null
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(out / PREFIX_FILE))
    meta = {"vocab": model.vocab.to_json(), "clap_dim": model.clap_dim, "system": model.system}
    (out / LM_FILE).write_text(json.dumps(meta, indent=2))


def load_lm(path: Path, device: str | torch.device = "cpu") -> MusicLM:
    """What `save_lm` wrote, on `device`, in eval mode."""
    path = Path(path)
    if not (path / LM_FILE).exists():
        raise FileNotFoundError(f"{path} holds no {LM_FILE}: not a musicot LM folder")
    meta = json.loads((path / LM_FILE).read_text())
    llama = LlamaForCausalLM.from_pretrained(path)
    model = MusicLM(llama, Vocab.from_json(meta["vocab"]), int(meta["clap_dim"]), meta["system"])
    prefix = load_file(str(path / PREFIX_FILE))
    with torch.no_grad():
        model.clap_proj.weight.copy_(prefix["clap_proj.weight"])
        model.clap_proj.bias.copy_(prefix["clap_proj.bias"])
        model.clap_null.copy_(prefix["clap_null"])
    return model.to(device).eval()


def size_from_config(cfg: dict) -> ModelSize:
    """`ModelSize` from the `lm.model` config section."""
    return ModelSize(**{k: cfg[k] for k in asdict(ModelSize(1, 1, 1, 1, 1, 1)) if k in cfg})
