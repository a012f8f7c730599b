"""Transformers for sequences: encoder classifiers, decoder-only LMs and encoder-decoders.

Vaswani et al., "Attention Is All You Need" (NeurIPS 2017): the encoder-decoder
and its layers. Radford et al., "Language Models are Unsupervised Multitask
Learners" (OpenAI 2019): the GPT-2 decoder-only language model.

All attention goes through ``F.scaled_dot_product_attention`` (see
``modelzoo.layers.attention``). Padding masks follow PyTorch's convention: a
boolean (B, T) tensor, True where a position is padding and must be ignored.

Three model classes:

* ``TransformerEncoderClassifier``: token embedding + positions, a stack of
  encoder layers (pre- or post-norm), CLS or mean pooling, a linear head.
* ``GPT``: a causal language model; ``model(tokens, targets=None)`` returns
  ``LMOutput(logits, loss)`` and ``generate`` decodes with a KV cache.
* ``TransformerSeq2Seq``: the encoder-decoder with shared embeddings and a
  tied output projection; ``generate`` does greedy and beam search.

All three take ``set_grad_checkpointing(True)``: each layer is recomputed in backward
instead of storing its activations (training only; see ``modelzoo.layers.checkpointing``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.layers import (
    LayerType,
    Mlp,
    check_tokens,
    get_act_layer,
    get_norm_layer,
    token_inputs,
)
from modelzoo.layers.attention import Attention, CrossAttention, KVCache, causal_mask
from modelzoo.layers.checkpointing import GradCheckpointing, run_block
from modelzoo.layers.checks import skip_value_checks
from modelzoo.layers.helpers import model_name
from modelzoo.layers.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from modelzoo.registry import TensorSpec, register_model

__all__ = [
    "EncoderLayer",
    "DecoderLayer",
    "TransformerEncoderClassifier",
    "GPTConfig",
    "GPT",
    "LMOutput",
    "SearchOutput",
    "TransformerSeq2Seq",
]

_logger = logging.getLogger(__name__)

_PAPER = "Vaswani et al., Attention Is All You Need, NeurIPS 2017"
_GPT2_PAPER = "Radford et al., Language Models are Unsupervised Multitask Learners, OpenAI 2019"


# --- blocks ----------------------------------------------------------------------------


class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each in a residual branch.

    Computes what ``nn.TransformerEncoderLayer(batch_first=True)`` computes;
    its weights map as ``self_attn.in_proj_*`` -> ``attn.qkv.*``,
    ``self_attn.out_proj`` -> ``attn.proj``, ``linear1``/``linear2`` ->
    ``mlp.fc1``/``mlp.fc2``, ``norm1``/``norm2`` -> ``norm1``/``norm2``. Run
    with ``is_causal=True`` it is the block of a decoder-only model (GPT).

    Args:
        dim: model width.
        num_heads: attention heads; must divide ``dim``.
        mlp_dim: hidden width of the feed-forward network.
        proj_drop: dropout on the attention and feed-forward outputs and
            inside the feed-forward network (``dropout`` of ``nn.TransformerEncoderLayer``).
        attn_drop: dropout on the attention weights.
        act_layer: feed-forward activation.
        norm_layer: normalization type.
        norm_first: pre-norm (normalize each branch's input) instead of
            post-norm (normalize after each residual sum, as in the paper).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        act_layer: type[nn.Module] = nn.GELU,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        norm_first: bool = True,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, attn_drop=attn_drop, proj_drop=proj_drop)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_dim, act_layer=act_layer, drop=proj_drop)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Transform ``x`` (B, T, C); the arguments are those of ``Attention.forward``."""
        if self.norm_first:
            x = x + self.attn(self.norm1(x), attn_mask, is_causal, kv_cache)
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x, attn_mask, is_causal, kv_cache))
        return self.norm2(x + self.mlp(x))


class DecoderLayer(nn.Module):
    """Causal self-attention, attention to the encoder output, and a feed-forward network.

    Computes what ``nn.TransformerDecoderLayer(batch_first=True)`` computes
    with a causal target mask; beyond the ``EncoderLayer`` mapping,
    ``multihead_attn.in_proj_*`` rows ``[:dim]`` map to ``cross_attn.q`` and
    rows ``[dim:]`` to ``cross_attn.kv``, ``multihead_attn.out_proj`` to
    ``cross_attn.proj`` and ``norm3`` to ``norm3``.

    Args: as ``EncoderLayer``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_dim: int,
        *,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        act_layer: type[nn.Module] = nn.ReLU,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.norm1 = norm_layer(dim)
        self.self_attn = Attention(dim, num_heads, attn_drop=attn_drop, proj_drop=proj_drop)
        self.norm2 = norm_layer(dim)
        self.cross_attn = CrossAttention(dim, num_heads, attn_drop=attn_drop, proj_drop=proj_drop)
        self.norm3 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_dim, act_layer=act_layer, drop=proj_drop)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
        kv_cache: tuple[KVCache, KVCache] | None = None,
    ) -> torch.Tensor:
        """Transform the target sequence ``x`` (B, T, C) given ``memory`` (B, S, C).

        Args:
            x: the target sequence.
            memory: the encoder output.
            self_mask: boolean self-attention mask (True = may attend); None
                for a plain causal mask.
            memory_mask: boolean mask over ``memory`` (True = may attend).
            kv_cache: the (self-attention, cross-attention) caches of this
                layer, for incremental decoding.
        """
        self_cache, cross_cache = kv_cache if kv_cache is not None else (None, None)
        causal = self_mask is None
        if self.norm_first:
            x = x + self.self_attn(self.norm1(x), self_mask, causal, self_cache)
            x = x + self.cross_attn(self.norm2(x), memory, memory_mask, cross_cache)
            return x + self.mlp(self.norm3(x))
        x = self.norm1(x + self.self_attn(x, self_mask, causal, self_cache))
        x = self.norm2(x + self.cross_attn(x, memory, memory_mask, cross_cache))
        return self.norm3(x + self.mlp(x))


def _check_padding_mask(mask: torch.Tensor, tokens: torch.Tensor, model: str, what: str) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(tokens.shape):
        raise InputShapeError(
            f"{model} expects {what} as a bool tensor of shape {tuple(tokens.shape)} (True = "
            f"padding), like its tokens; got {mask.dtype} of shape {tuple(mask.shape)}."
        )


def _key_mask(padding_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) padding mask -> (B, 1, 1, S) attention mask, True where a key may be attended."""
    return None if padding_mask is None else ~padding_mask[:, None, None, :]


# --- encoder classifier ----------------------------------------------------------------


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
        self.apply(_init_bert_style)
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
            _check_padding_mask(padding_mask, tokens, name, "padding_mask")
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
        attn_mask = _key_mask(mask)
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
        attn_mask = _key_mask(mask)
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


def _init_bert_style(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


# --- decoder-only language model -------------------------------------------------------


class LMOutput(NamedTuple):
    """What a language model returns: ``logits`` (B, T, vocab_size), and the mean
    next-token cross-entropy ``loss`` when targets were given (else None)."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


@dataclass
class GPTConfig:
    """The shape of a GPT, and the one place its defaults are written.

    ``GPT.from_config(config)`` builds it; ``GPT``'s keyword arguments are these fields
    with these defaults (a test keeps them equal), and ``model.config`` holds them.
    """

    vocab_size: int = 256  # token ids; 256 is byte level, 50257 is GPT-2's BPE
    max_len: int = 128  # context window: the number of learned positions
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads per block; must divide d_model
    d_model: int = 64  # width of the residual stream
    d_ff: int | None = None  # feed-forward hidden width; None means 4 * d_model
    drop_rate: float = 0.0  # dropout on embeddings and on each residual branch (no head dropout)
    attn_drop_rate: float = 0.0  # dropout on attention weights
    tie_embeddings: bool = True  # the output projection reuses the token embedding matrix


class GPT(GradCheckpointing, nn.Module):
    """A decoder-only causal language model with learned positions (GPT-2).

    ``model(tokens)`` returns ``LMOutput(logits, loss=None)``;
    ``model(tokens, targets)`` adds the cross-entropy between ``logits`` and
    ``targets`` (B, T), usually the tokens shifted left by one; ids of -100 in
    ``targets`` are ignored (PyTorch's default ``ignore_index``). The output is
    always an ``LMOutput``, so code never has to check what it got.

    Args: the fields of ``GPTConfig``, which ``self.config`` holds.
    """

    # The defaults are read from GPTConfig so that they are written once.
    def __init__(
        self,
        vocab_size: int = GPTConfig.vocab_size,
        max_len: int = GPTConfig.max_len,
        num_layers: int = GPTConfig.num_layers,
        num_heads: int = GPTConfig.num_heads,
        d_model: int = GPTConfig.d_model,
        d_ff: int | None = GPTConfig.d_ff,
        drop_rate: float = GPTConfig.drop_rate,
        attn_drop_rate: float = GPTConfig.attn_drop_rate,
        tie_embeddings: bool = GPTConfig.tie_embeddings,
    ) -> None:
        super().__init__()
        self.config = GPTConfig(
            vocab_size=vocab_size,
            max_len=max_len,
            num_layers=num_layers,
            num_heads=num_heads,
            d_model=d_model,
            d_ff=d_ff,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            tie_embeddings=tie_embeddings,
        )
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = LearnedPositionalEmbedding(max_len, d_model)
        self.drop = nn.Dropout(drop_rate)
        self.blocks = nn.ModuleList(
            EncoderLayer(
                d_model,
                num_heads,
                d_ff or 4 * d_model,
                proj_drop=drop_rate,
                attn_drop=attn_drop_rate,
                act_layer=nn.GELU,
                norm_first=True,
            )
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(_init_bert_style)
        # GPT-2 scales the residual projections by 1/sqrt(2 * layers) so that the residual
        # stream's variance does not grow with depth.
        for block in self.blocks:
            for proj in (block.attn.proj, block.mlp.fc2):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * num_layers))
        if tie_embeddings:
            self.head.weight = self.tok_embed.weight

    @classmethod
    def from_config(cls, config: GPTConfig) -> GPT:
        return cls(**asdict(config))

    def new_kv_cache(self) -> list[KVCache]:
        """An empty cache, one per block, for ``forward(..., kv_cache=...)``."""
        return [KVCache() for _ in self.blocks]

    def forward(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        kv_cache: list[KVCache] | None = None,
    ) -> LMOutput:
        """Next-token logits for token ids (B, T).

        Args:
            tokens: token ids, at most ``max_len`` per row.
            targets: the ids each position should predict (B, T); adds the loss.
            kv_cache: from ``new_kv_cache()``; ``tokens`` then continue the
                positions already in the cache, and their keys and values are
                added to it (inference only).

        Raises:
            InputShapeError: ids outside the vocabulary, or more positions than ``max_len``.
        """
        name = model_name(self, "gpt")
        offset = len(kv_cache[0]) if kv_cache else 0
        check_tokens(tokens, model=name, vocab_size=self.vocab_size, max_len=self.max_len)
        # Without a cache check_tokens has checked the length already.
        if offset and offset + tokens.shape[1] > self.max_len:
            raise InputShapeError(
                f"{name} takes at most max_len={self.max_len} positions; the cache holds "
                f"{offset} and {tokens.shape[1]} more were given. Start a new cache with the "
                f"last {self.max_len - tokens.shape[1]} tokens, or use generate(), which crops."
            )
        x = self.drop(self.pos_embed(self.tok_embed(tokens), offset))
        if kv_cache is None and self.grad_checkpointing_active():
            # A cache is filled in place, which a recomputation would repeat: never checkpointed.
            for block in self.blocks:
                x = run_block(block, x, is_causal=True, checkpointing=True)
        else:
            for i, block in enumerate(self.blocks):
                x = block(x, is_causal=True, kv_cache=kv_cache[i] if kv_cache else None)
        logits = self.head(self.norm(x))  # (B, T, V)
        if targets is None:
            return LMOutput(logits)
        if targets.shape != tokens.shape:
            raise InputShapeError(
                f"{name} expects targets of the tokens' shape {tuple(tokens.shape)}; got "
                f"{tuple(targets.shape)}."
            )
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return LMOutput(logits, loss)

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue each prompt row by ``max_new_tokens`` tokens.

        The model runs in eval mode for the call (its mode is restored after).
        Once a sequence outgrows ``max_len``, each step conditions on its last
        ``max_len`` tokens; since learned positions then shift, the cache is
        rebuilt at those steps, so the cached path gives exactly what full
        recomputation gives.

        Args:
            prompt: token ids (B, T0), T0 >= 1; a prompt longer than ``max_len``
                is cropped to its last ``max_len`` tokens for conditioning.
            max_new_tokens: tokens to add.
            temperature: divides the logits; 0 picks the most likely token (greedy).
            top_k: sample only among the ``top_k`` most likely tokens.
            use_cache: reuse keys and values of earlier positions (faster; same result).
            generator: random generator for sampling, for reproducible output.

        Returns:
            The prompt followed by the new tokens, (B, T0 + max_new_tokens).
        """
        name = model_name(self, "gpt")
        check_tokens(prompt, model=name, vocab_size=self.vocab_size)
        if prompt.shape[1] == 0:
            raise InputShapeError(f"{name}.generate needs a prompt of at least one token per row.")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0 (0 is greedy); got {temperature}")
        was_training = self.training
        self.eval()
        try:
            tokens = prompt
            cache: list[KVCache] | None = None
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits = self(tokens[:, -self.max_len :]).logits
                elif cache is None or tokens.shape[1] > self.max_len:
                    cache = self.new_kv_cache()
                    logits = self(tokens[:, -self.max_len :], kv_cache=cache).logits
                else:
                    logits = self(tokens[:, len(cache[0]) :], kv_cache=cache).logits
                next_token = _sample(logits[:, -1], temperature, top_k, generator)
                tokens = torch.cat([tokens, next_token], dim=1)
        finally:
            self.train(was_training)
        return tokens


def _sample(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One token id per row (B, 1) from last-position logits (B, V)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)


# --- encoder-decoder -------------------------------------------------------------------


class SearchOutput(NamedTuple):
    """What greedy and beam search return: the generated ``tokens`` (B, L) and the
    ``scores`` (B,) by which they were chosen: the log-probability of each row up to and
    including its end token (divided by ``length ** length_penalty`` for beam search)."""

    tokens: torch.Tensor
    scores: torch.Tensor


class TransformerSeq2Seq(GradCheckpointing, nn.Module):
    """The Transformer encoder-decoder, with one vocabulary for source and target.

    ``forward(src, tgt_in, src_padding_mask=None, tgt_padding_mask=None)``
    returns next-token logits (B, T_tgt, vocab_size) for the target input
    (teacher forcing: ``tgt_in`` starts with ``bos_id``). Padding masks are
    (B, T) bool, True at padding. ``generate`` decodes greedily or with beam
    search and a KV cache.

    Args:
        vocab_size: token ids, shared by source and target.
        d_model: model width.
        num_layers: encoder layers (and decoder layers unless ``num_decoder_layers``).
        num_heads: attention heads per layer.
        d_ff: feed-forward hidden width.
        max_len: longest source or target sequence accepted.
        num_decoder_layers: decoder layers; None means ``num_layers``.
        drop_rate: dropout on the embeddings and on every residual branch (the only dropout
            of a model without a classifier head; see ``transformer_seq2seq``).
        attn_drop_rate: dropout on attention weights.
        act_layer: feed-forward activation.
        norm_layer: normalization type.
        norm_first: pre-norm layers with a final norm after each stack (trains
            more easily), or post-norm layers as in the paper.
        tie_embeddings: the output projection reuses the embedding matrix.
        pad_id: padding id, written after an end token by ``generate``.
        bos_id: the id that starts every target sequence.
        eos_id: the id that ends a target sequence.
    """

    def __init__(
        self,
        vocab_size: int = 256,
        d_model: int = 128,
        num_layers: int = 3,
        num_heads: int = 4,
        d_ff: int = 512,
        max_len: int = 128,
        num_decoder_layers: int | None = None,
        drop_rate: float = 0.1,
        attn_drop_rate: float = 0.0,
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = nn.LayerNorm,
        norm_first: bool = True,
        tie_embeddings: bool = True,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
    ) -> None:
        super().__init__()
        for what, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= value < vocab_size:
                raise ConfigError(f"{what}={value} must be a token id in [0, {vocab_size})")
        act, norm = get_act_layer(act_layer), get_norm_layer(norm_layer)
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.embed_scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_enc = SinusoidalPositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(drop_rate)
        layer_args: dict[str, Any] = dict(
            proj_drop=drop_rate,
            attn_drop=attn_drop_rate,
            act_layer=act,
            norm_layer=norm,
            norm_first=norm_first,
        )
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, num_heads, d_ff, **layer_args) for _ in range(num_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, num_heads, d_ff, **layer_args)
            for _ in range(num_decoder_layers or num_layers)
        )
        self.encoder_norm = norm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = norm(d_model) if norm_first else nn.Identity()
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        # Unit-variance embeddings after the sqrt(d_model) scale.
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        if tie_embeddings:
            self.head.weight = self.embed.weight

    def _name(self) -> str:
        return model_name(self, "transformer_seq2seq")

    def new_kv_cache(self) -> list[tuple[KVCache, KVCache]]:
        """Empty (self-attention, cross-attention) caches, one pair per decoder layer."""
        return [(KVCache(), KVCache()) for _ in self.decoder]

    def encode(
        self, src: torch.Tensor, src_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder output (B, S, d_model) for source ids (B, S)."""
        name = self._name()
        check_tokens(src, model=f"{name} (src)", vocab_size=self.vocab_size, max_len=self.max_len)
        if src_padding_mask is not None:
            _check_padding_mask(src_padding_mask, src, name, "src_padding_mask")
        x = self.drop(self.pos_enc(self.embed(src) * self.embed_scale))
        attn_mask = _key_mask(src_padding_mask)
        checkpointing = self.grad_checkpointing_active()
        for layer in self.encoder:
            x = run_block(layer, x, attn_mask, checkpointing=checkpointing)
        return self.encoder_norm(x)

    def decode(
        self,
        tgt_in: torch.Tensor,
        memory: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
        kv_cache: list[tuple[KVCache, KVCache]] | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, T, vocab_size) for target ids (B, T) given the encoder output.

        Args:
            tgt_in: target ids; with ``kv_cache``, the positions after those cached.
            memory: ``encode(src)``.
            src_padding_mask: the source padding mask given to ``encode``.
            tgt_padding_mask: target padding (True = padding); not with ``kv_cache``.
            kv_cache: from ``new_kv_cache()``, for incremental decoding.
        """
        name = self._name()
        offset = len(kv_cache[0][0]) if kv_cache else 0
        # Without a cache check_tokens checks the length (one check FX tracing can record).
        max_len = None if offset else self.max_len
        check_tokens(tgt_in, model=f"{name} (tgt_in)", vocab_size=self.vocab_size, max_len=max_len)
        total = offset + tgt_in.shape[1]
        if offset and total > self.max_len:
            cached = f" after {offset} cached" if offset else ""
            raise InputShapeError(
                f"{name} takes target sequences of at most max_len={self.max_len} steps; got "
                f"{total} in shape {tuple(tgt_in.shape)}{cached}. Truncate the target, or "
                f"build the model with max_len>={total}."
            )
        self_mask = None
        if tgt_padding_mask is not None:
            if kv_cache is not None:
                raise ConfigError("tgt_padding_mask cannot be combined with a kv_cache")
            _check_padding_mask(tgt_padding_mask, tgt_in, name, "tgt_padding_mask")
            T = tgt_in.shape[1]
            self_mask = causal_mask(T, T, tgt_in.device) & _key_mask(tgt_padding_mask)
        memory_mask = _key_mask(src_padding_mask)
        x = self.drop(self.pos_enc(self.embed(tgt_in) * self.embed_scale, offset))
        if kv_cache is None and self.grad_checkpointing_active():
            # A cache is filled in place, which a recomputation would repeat: never checkpointed.
            for layer in self.decoder:
                x = run_block(layer, x, memory, self_mask, memory_mask, checkpointing=True)
        else:
            for i, layer in enumerate(self.decoder):
                x = layer(x, memory, self_mask, memory_mask, kv_cache[i] if kv_cache else None)
        return self.head(self.decoder_norm(x))

    def forward(
        self,
        src: torch.Tensor,
        tgt_in: torch.Tensor,
        src_padding_mask: torch.Tensor | None = None,
        tgt_padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next-token logits (B, T_tgt, vocab_size) for each target input position."""
        memory = self.encode(src, src_padding_mask)
        return self.decode(tgt_in, memory, src_padding_mask, tgt_padding_mask)

    def _special_ids(
        self, bos_id: int | None, eos_id: int | None, pad_id: int | None
    ) -> tuple[int, int, int]:
        return (
            self.bos_id if bos_id is None else bos_id,
            self.eos_id if eos_id is None else eos_id,
            self.pad_id if pad_id is None else pad_id,
        )

    def _check_gen_len(self, max_len: int) -> None:
        if not 1 <= max_len <= self.max_len:
            raise ConfigError(
                f"max_len={max_len} generated tokens is outside [1, {self.max_len}], the "
                f"target lengths {self._name()} was built for; build it with a larger max_len."
            )

    @torch.no_grad()
    def greedy_search(
        self,
        src: torch.Tensor,
        max_len: int,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        src_padding_mask: torch.Tensor | None = None,
    ) -> SearchOutput:
        """The most likely next token at every step; see ``generate``."""
        self._check_gen_len(max_len)
        bos_id, eos_id, pad_id = self._special_ids(bos_id, eos_id, pad_id)
        memory = self.encode(src, src_padding_mask)
        B = src.shape[0]
        cache = self.new_kv_cache()
        last = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)
        scores = torch.zeros(B, device=src.device)
        out = []
        for _ in range(max_len):
            logits = self.decode(last, memory, src_padding_mask, kv_cache=cache)[:, -1]
            logp = F.log_softmax(logits.float(), dim=-1)  # (B, V)
            token = logp.argmax(dim=-1)
            scores = scores + logp.gather(1, token[:, None])[:, 0].masked_fill(finished, 0.0)
            token = token.masked_fill(finished, pad_id)  # (B,)
            out.append(token)
            finished = finished | (token == eos_id)
            last = token[:, None]
            if bool(finished.all()):
                break
        return SearchOutput(torch.stack(out, dim=1), scores)

    @torch.no_grad()
    def beam_search(
        self,
        src: torch.Tensor,
        max_len: int,
        beam_size: int = 4,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        src_padding_mask: torch.Tensor | None = None,
        length_penalty: float = 1.0,
    ) -> SearchOutput:
        """Keep the ``beam_size`` most likely partial targets at every step; see ``generate``.

        A finished hypothesis stays in the beam and extends with padding at no
        cost, so hypotheses compete on their total log-probability while
        searching; the search stops when every hypothesis has ended or after
        ``max_len`` steps, and returns per source the hypothesis with the best
        log-probability divided by ``length ** length_penalty``.
        """
        self._check_gen_len(max_len)
        bos_id, eos_id, pad_id = self._special_ids(bos_id, eos_id, pad_id)
        if beam_size < 1:
            raise ConfigError(f"beam_size must be at least 1; got {beam_size}")
        B, K, V, device = src.shape[0], beam_size, self.vocab_size, src.device
        memory = self.encode(src, src_padding_mask).repeat_interleave(K, dim=0)  # (B*K, S, C)
        if src_padding_mask is not None:
            src_padding_mask = src_padding_mask.repeat_interleave(K, dim=0)
        cache = self.new_kv_cache()
        # Only the first beam is live at the start, or the K beams would be K copies.
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0
        last = torch.full((B * K, 1), bos_id, dtype=torch.long, device=device)
        hyps = torch.empty(B * K, 0, dtype=torch.long, device=device)
        finished = torch.zeros(B * K, dtype=torch.bool, device=device)
        lengths = torch.zeros(B * K, device=device)
        pad_only = torch.full((V,), float("-inf"), device=device)
        pad_only[pad_id] = 0.0
        batch_base = torch.arange(B, device=device)[:, None] * K  # (B, 1)
        for _ in range(max_len):
            logits = self.decode(last, memory, src_padding_mask, kv_cache=cache)[:, -1]
            logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
            logp = torch.where(finished[:, None], pad_only, logp)
            candidates = (scores.view(B * K, 1) + logp).view(B, K * V)
            scores, index = candidates.topk(K, dim=1)  # (B, K)
            parent = (batch_base + index // V).view(-1)  # (B*K,) rows of the previous step
            token = (index % V).view(-1)
            lengths = lengths[parent] + (~finished[parent]).float()
            finished = finished[parent] | (token == eos_id)
            hyps = torch.cat([hyps[parent], token[:, None]], dim=1)
            # Cross-attention caches need no reordering: a parent is a beam of the same source.
            for self_cache, _ in cache:
                self_cache.reorder(parent)
            last = token[:, None]
            if bool(finished.all()):
                break
        normalized = scores / lengths.view(B, K).clamp_min(1.0) ** length_penalty
        best = batch_base.view(-1) + normalized.argmax(dim=1)  # (B,)
        # The best hypotheses may have ended before the search stopped: drop the columns
        # past the longest of them, which hold only padding.
        tokens = hyps[best, : int(lengths[best].max())]
        return SearchOutput(tokens, normalized.view(-1)[best])

    @torch.no_grad()
    def generate(
        self,
        src: torch.Tensor,
        max_len: int,
        beam_size: int = 1,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        *,
        src_padding_mask: torch.Tensor | None = None,
        length_penalty: float = 1.0,
    ) -> torch.Tensor:
        """Decode a target for each source row: greedy for ``beam_size=1``, else beam search.

        The model runs in eval mode for the call (its mode is restored after).

        Args:
            src: source ids (B, S).
            max_len: the most tokens to generate per row (at most the model's ``max_len``).
            beam_size: hypotheses kept per source.
            bos_id: start id fed first; default the model's ``bos_id``.
            eos_id: end id; a row stops after it. Default the model's ``eos_id``.
            pad_id: written after a row's end; default the model's ``pad_id``.
            src_padding_mask: source padding (True = padding).
            length_penalty: beam search ranks finished hypotheses by
                log-probability / length ** length_penalty (0: raw log-probability).

        Returns:
            Generated ids (B, L), L <= max_len, without the start id; each row ends
            with ``eos_id`` followed by ``pad_id``, unless it reached ``max_len``.
            ``greedy_search`` and ``beam_search`` also give the scores.
        """
        was_training = self.training
        self.eval()
        try:
            ids = dict(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
            if beam_size == 1:
                greedy = self.greedy_search(src, max_len, src_padding_mask=src_padding_mask, **ids)
                return greedy.tokens
            return self.beam_search(
                src,
                max_len,
                beam_size,
                src_padding_mask=src_padding_mask,
                length_penalty=length_penalty,
                **ids,
            ).tokens
        finally:
            self.train(was_training)


# --- builders --------------------------------------------------------------------------


def _seq2seq_inputs(model: nn.Module, seq_len: int = 16) -> tuple[TensorSpec, ...]:
    seq_len = min(seq_len, model.max_len)
    return (
        TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="src"),
        TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="tgt_in"),
    )


def _seq2seq_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, min(16, model.max_len), model.vocab_size)


@register_model(
    family="transformer", task="sequence_classification", inputs=token_inputs, paper=_PAPER
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


def _register_lm(**kwargs: Any) -> Any:
    return register_model(
        family="transformer",
        task="language_modeling",
        inputs=token_inputs,
        paper=_GPT2_PAPER,
        **kwargs,
    )


@_register_lm()
def gpt_nano(*, vocab_size: int = 256, max_len: int = 128, **kwargs: Any) -> GPT:
    """4 layers, 4 heads, width 64, byte-level: a model to test and to overfit (0.2M).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(vocab_size=vocab_size, max_len=max_len, num_layers=4, num_heads=4, d_model=64)
    return GPT(**dict(model_args, **kwargs))


@_register_lm()
def gpt_mini(*, vocab_size: int = 256, max_len: int = 256, **kwargs: Any) -> GPT:
    """minGPT's gpt-mini: 6 layers, 6 heads, width 192, byte-level (2.7M).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size, max_len=max_len, num_layers=6, num_heads=6, d_model=192
    )
    return GPT(**dict(model_args, **kwargs))


@_register_lm()
def gpt2_small(*, vocab_size: int = 50257, max_len: int = 1024, **kwargs: Any) -> GPT:
    """GPT-2 124M: 12 layers, 12 heads, width 768, 1024 positions, tied embeddings.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        num_layers=12,
        num_heads=12,
        d_model=768,
        drop_rate=0.1,
        attn_drop_rate=0.1,
    )
    return GPT(**dict(model_args, **kwargs))


def _register_seq2seq(**kwargs: Any) -> Any:
    return register_model(
        family="transformer",
        task="seq2seq",
        inputs=_seq2seq_inputs,
        output_shape=_seq2seq_output,
        paper=_PAPER,
        **kwargs,
    )


@_register_seq2seq()
def transformer_seq2seq(
    *, vocab_size: int = 256, max_len: int = 128, **kwargs: Any
) -> TransformerSeq2Seq:
    """3+3 pre-norm layers of width 128, byte-level vocabulary with pad/bos/eos = 0/1/2.

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        d_model=128,
        num_layers=3,
        num_heads=4,
        d_ff=512,
        norm_first=True,
    )
    return TransformerSeq2Seq(**dict(model_args, **kwargs))


@_register_seq2seq()
def transformer_base(
    *, vocab_size: int = 37000, max_len: int = 1024, **kwargs: Any
) -> TransformerSeq2Seq:
    """The paper's base model: 6+6 post-norm layers, d_model 512, 8 heads, d_ff 2048,
    dropout 0.1, sinusoidal positions, shared embeddings and output projection.

    The vocabulary defaults to 37000, the shared source-target BPE vocabulary
    of the paper's WMT 2014 English-German experiments (63M parameters with it).

    Dropout keywords: ``drop_rate`` (there is no classifier head) is dropout on the embeddings
    and on every residual branch; ``attn_drop_rate`` on the attention weights.
    """
    model_args = dict(
        vocab_size=vocab_size,
        max_len=max_len,
        d_model=512,
        num_layers=6,
        num_heads=8,
        d_ff=2048,
        drop_rate=0.1,
        act_layer=nn.ReLU,
        norm_first=False,
        tie_embeddings=True,
    )
    return TransformerSeq2Seq(**dict(model_args, **kwargs))
