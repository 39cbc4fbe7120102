"""BEST-RQ (Chiu et al. 2022) around transformers' Conformer, `Wav2Vec2BertModel`.

The encoder takes stacked, normalised log-mel rows (`input_features`, width n_mels * stack) and
replaces the projected rows at masked frames by its learnt `masked_spec_embed`
(`mask_time_indices`). A frozen `vector_quantize_pytorch.RandomProjectionQuantizer` turns the
*unmasked* input rows into codes; a linear head predicts them at the masked frames
(cross-entropy there only).

transformers only creates `masked_spec_embed` when `mask_time_prob > 0`, and in train mode it
masks at random by itself whenever no `mask_time_indices` is given: every training forward here
passes its own mask (all False for no masking), so the masks stay pure functions of the step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Wav2Vec2BertConfig, Wav2Vec2BertForCTC, Wav2Vec2BertModel
from vector_quantize_pytorch import RandomProjectionQuantizer

from musicot.semantic.config import FeatureConfig, ModelConfig, SslConfig

BLANK_ID = 0  # CTC blank = the config's pad token


def encoder_config(model: ModelConfig, features: FeatureConfig, mask_prob: float, vocab_size: int | None = None):
    """The `Wav2Vec2BertConfig` of our encoder (`vocab_size` only for the CTC model)."""
    return Wav2Vec2BertConfig(
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.intermediate,
        feature_projection_input_dim=features.dim,
        conv_depthwise_kernel_size=model.conv_kernel,
        hidden_dropout=model.dropout,
        activation_dropout=model.dropout,
        attention_dropout=model.dropout,
        feat_proj_dropout=model.dropout,
        conformer_conv_dropout=model.dropout,
        final_dropout=model.dropout,
        layerdrop=0.0,  # every layer's hidden states feed the tokens and probes: none may be skipped
        apply_spec_augment=True,
        mask_time_prob=mask_prob,  # > 0 so that masked_spec_embed exists (see the module docstring)
        mask_feature_prob=0.0,
        vocab_size=vocab_size,
        pad_token_id=BLANK_ID,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )


class BestRq(nn.Module):
    """Encoder + prediction head + frozen random-projection quantizer (its buffers ride in the state dict)."""

    def __init__(self, model: ModelConfig, features: FeatureConfig, ssl: SslConfig) -> None:
        super().__init__()
        self.encoder = Wav2Vec2BertModel(encoder_config(model, features, ssl.mask_prob))
        self.head = nn.Linear(model.hidden, ssl.codebook_size)
        # norm=False: the inputs are already standardised per feature on the train split, BEST-RQ's
        # normalisation; the library's LayerNorm would also rescale every frame and erase its loudness.
        self.quantizer = RandomProjectionQuantizer(
            dim=features.dim, codebook_size=ssl.codebook_size, codebook_dim=ssl.codebook_dim, norm=False
        )
        self.quantizer.requires_grad_(False)

    def trained_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.head.parameters()]

    @torch.no_grad()
    def targets(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, frames) codes of the unmasked input rows."""
        return self.quantizer(features)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy at masked frames, accuracy there) for (batch, frames, dim) features and a bool mask."""
        targets = self.targets(features)
        hidden = self.encoder(features, mask_time_indices=mask).last_hidden_state
        logits = self.head(hidden[mask])
        loss = F.cross_entropy(logits, targets[mask])
        return loss, (logits.argmax(-1) == targets[mask]).float().mean()


def ctc_model(encoder: Wav2Vec2BertModel, vocab_size: int) -> Wav2Vec2BertForCTC:
    """A `Wav2Vec2BertForCTC` whose encoder starts from `encoder`'s weights (its head is new)."""
    config = Wav2Vec2BertConfig.from_dict({**encoder.config.to_dict(), "vocab_size": vocab_size})
    model = Wav2Vec2BertForCTC(config)
    model.wav2vec2_bert.load_state_dict(encoder.state_dict())
    return model


def ctc_logits(model: Wav2Vec2BertForCTC, features, attention_mask, mask) -> torch.Tensor:
    """(batch, frames, vocab) logits; `mask` (bool, batch x frames) masks frames as in SSL (SpecAugment)."""
    hidden = model.wav2vec2_bert(features, attention_mask=attention_mask, mask_time_indices=mask).last_hidden_state
    return model.lm_head(model.dropout(hidden))


def hidden_states(encoder: Wav2Vec2BertModel, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every layer's (batch, frames, hidden) output: index 0 is the input projection, i the i-th Conformer layer."""
    out = encoder(features, output_hidden_states=True)
    return out.hidden_states


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
