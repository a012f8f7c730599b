"""The encoder classifier: token embedding and positions, encoder layers, CLS or mean
pooling and a linear head (BERT-style, for sequence classification)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import LayerType, check_tokens, get_act_layer, get_norm_layer, token_inputs
from modelzoo.layers.checkpointing import GradCheckpointing, run_block
from modelzoo.layers.checks import skip_value_checks
from modelzoo.layers.helpers import model_name
from modelzoo.layers.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from modelzoo.models.transformer.layers import (
    VASWANI_PAPER,
    EncoderLayer,
    check_padding_mask,
    init_bert_style,
    key_mask,
)
from modelzoo.registry import register_model

__all__ = ["TransformerEncoderClassifier"]


class TransformerEncoderClassifier(GradCheckpointing, nn.Module):
    """A Transformer encoder over token ids, pooled into one vector and classified.

    ``forward(tokens, lengths=None, padding_mask=None)``: pass the valid length
    of each row (right padding) or a (B, T) padding mask (True = padding);
    padded positions are not attended to and not pooled, so their ids do not
    change the output. ``forward_features`` returns the pooled (B, d_model)
    representation, so the head needs no mask; ``encode`` gives the
    per-position outputs.

    Args:
        vocab_size: number of token ids.
        num_classes: output size; 0 makes the head an identity.
        d_model: model width.
        num_layers: encoder layers.
        num_heads: attention heads per layer.
        d_ff: feed-forward hidden width.
        max_len: longest sequence accepted (without the CLS token).
        drop_rate: dropout on the pooled features before the classifier (timm's meaning,
            as in every zoo classifier).
        pos_drop_rate: dropout on the embeddings after adding the positions.
        proj_drop_rate: dropout on the attention and feed-forward outputs of each layer
            and inside its feed-forward network.
        attn_drop_rate: dropout on attention weights.
        act_layer: feed-forward activation.
        norm_layer: normalization type.
        norm_first: pre-norm layers and a final norm (True) or post-norm layers.
        pool: ``"cls"`` (a learned token prepended to the sequence) or ``"mean"``
            (the average over non-padding positions).
        pos_encoding: ``"learned"`` or ``"sinusoidal"``.
    """

    def __init__(
        self,
        vocab_size: int = 256,
        num_classes: int = 2,
        d_model: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        d_ff: int = 512,
        max_len: int = 256,
        drop_rate: float = 0.1,
        pos_drop_rate: float = 0.1,
        proj_drop_rate: float = 0.1,
        attn_drop_rate: float = 0.0,
        act_layer: LayerType = nn.GELU,
        norm_layer: LayerType = nn.LayerNorm,
        norm_first: bool = True,
        pool: str = "cls",
        pos_encoding: str = "learned",
    ) -> None:
        super().__init__()
        if pool not in ("cls", "mean"):
            raise ConfigError(f"pool must be 'cls' or 'mean'; got {pool!r}")
        if pos_encoding not in ("learned", "sinusoidal"):
            raise ConfigError(
                f"pos_encoding must be 'learned' or 'sinusoidal'; got {pos_encoding!r}"
            )
        act, norm = get_act_layer(act_layer), get_norm_layer(norm_layer)
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.num_features = d_model
        self.max_len = max_len
        self.pool = pool
        self.num_prefix_tokens = 1 if pool == "cls" else 0

        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model)) if pool == "cls" else None
        n_pos = max_len + self.num_prefix_tokens
        if pos_encoding == "learned":
            self.pos_embed: nn.Module = LearnedPositionalEmbedding(n_pos, d_model)
            self.embed_scale = 1.0
        else:
            self.pos_embed = SinusoidalPositionalEncoding(d_model, n_pos)
            # Scaled as in the paper, so embeddings are not drowned by unit-size sinusoids.
            self.embed_scale = math.sqrt(d_model)
        self.pos_drop = nn.Dropout(pos_drop_rate)
        self.blocks = nn.ModuleList(
            EncoderLayer(
                d_model,
                num_heads,
                d_ff,
                proj_drop=proj_drop_rate,
                attn_drop=attn_drop_rate,
                act_layer=act,
                norm_layer=norm,
                norm_first=norm_first,
            )
            for _ in range(num_layers)
        )
        self.norm = norm(d_model) if norm_first else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(d_model, num_classes) if num_classes else nn.Identity()
        self.feature_info = [
            dict(num_chs=d_model, reduction=1, module=f"blocks.{i}") for i in range(num_layers)
        ]
        self.apply(init_bert_style)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=0.02)
        if pos_encoding == "sinusoidal":
            nn.init.normal_(self.tok_embed.weight, std=d_model**-0.5)

    def _padding_mask(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None,
        padding_mask: torch.Tensor | None,
    ) -> torch.Tensor | None:
        name = model_name(self, "transformer_encoder_classifier")
        if lengths is not None and padding_mask is not None:
            raise InputShapeError(f"{name} takes lengths or padding_mask, not both.")
        if padding_mask is not None:
            check_padding_mask(padding_mask, tokens, name, "padding_mask")
            return padding_mask
        if lengths is None:
            return None
        B, T = tokens.shape
        if tuple(lengths.shape) != (B,) or lengths.is_floating_point():
            raise InputShapeError(
                f"{name} expects lengths as integers of shape ({B},), one per row; got "
                f"{lengths.dtype} of shape {tuple(lengths.shape)}."
            )
        if (
            not skip_value_checks(lengths)
            and B
            and (int(lengths.min()) < 0 or int(lengths.max()) > T)
        ):
            raise InputShapeError(
                f"{name} expects lengths in [0, {T}] for sequences of {T} steps; got lengths "
                f"in [{int(lengths.min())}, {int(lengths.max())}]."
            )
        return torch.arange(T, device=tokens.device)[None, :] >= lengths[:, None]  # (B, T)

    def _embed(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None,
        padding_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        name = model_name(self, "transformer_encoder_classifier")
        check_tokens(tokens, model=name, vocab_size=self.vocab_size, max_len=self.max_len)
        mask = self._padding_mask(tokens, lengths, padding_mask)
        x = self.tok_embed(tokens) * self.embed_scale
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1 + T, C)
            if mask is not None:
                mask = F.pad(mask, (1, 0), value=False)  # the CLS token is never padding
        return self.pos_drop(self.pos_embed(x)), mask

    def encode(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-position outputs (B, P + T, d_model), P = 1 with CLS pooling, and their padding
        mask (None without padding)."""
        x, mask = self._embed(tokens, lengths, padding_mask)
        attn_mask = key_mask(mask)
        checkpointing = self.grad_checkpointing_active()
        for block in self.blocks:
            x = run_block(block, x, attn_mask, checkpointing=checkpointing)
        return self.norm(x), mask

    def _pool(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.pool == "cls":
            return x[:, 0]
        if mask is None:
            return x.mean(dim=1)
        keep = (~mask).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)

    def forward_features(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The pooled (B, d_model) representation, padding excluded."""
        return self._pool(*self.encode(tokens, lengths, padding_mask))

    def forward_intermediates(
        self,
        tokens: torch.Tensor,
        indices: list[int] | None = None,
        lengths: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Outputs of the layers ``indices`` as (B, d_model, T), channels first like a Conv1d
        feature map, the CLS token left out."""
        indices = list(range(len(self.blocks))) if indices is None else list(indices)
        x, mask = self._embed(tokens, lengths, padding_mask)
        attn_mask = key_mask(mask)
        checkpointing = self.grad_checkpointing_active()
        out = []
        for i, block in enumerate(self.blocks):
            x = run_block(block, x, attn_mask, checkpointing=checkpointing)
            if i in indices:
                out.append(x[:, self.num_prefix_tokens :].transpose(1, 2))  # (B, C, T)
        return out

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class logits (B, num_classes) for token ids (B, T)."""
        return self.forward_head(self.forward_features(tokens, lengths, padding_mask))


# --- registration ----------------------------------------------------------------------


@register_model(
    family="transformer", task="sequence_classification", inputs=token_inputs, paper=VASWANI_PAPER
)
def transformer_encoder_classifier(
    *, vocab_size: int = 256, num_classes: int = 2, **kwargs: Any
) -> TransformerEncoderClassifier:
    """4 pre-norm layers of width 128, CLS pooling, byte-level vocabulary (0.9M parameters).

    Dropout keywords: ``drop_rate`` is dropout before the classifier (timm's meaning);
    ``pos_drop_rate``, ``proj_drop_rate`` and ``attn_drop_rate`` act in the encoder (0.1, 0.1
    and 0 by default).
    """
    model_args = dict(
        vocab_size=vocab_size,
        num_classes=num_classes,
        d_model=128,
        num_layers=4,
        num_heads=4,
        d_ff=512,
        max_len=256,
    )
    return TransformerEncoderClassifier(**dict(model_args, **kwargs))
