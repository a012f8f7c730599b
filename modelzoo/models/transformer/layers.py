"""The layers every Transformer here is built from: encoder and decoder layers (pre- or
post-norm), padding-mask checks, and BERT-style initialization."""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.errors import InputShapeError
from modelzoo.layers import Mlp
from modelzoo.layers.attention import Attention, CrossAttention, KVCache

__all__ = [
    "VASWANI_PAPER",
    "DecoderLayer",
    "EncoderLayer",
    "check_padding_mask",
    "init_bert_style",
    "key_mask",
]

VASWANI_PAPER = "Vaswani et al., Attention Is All You Need, NeurIPS 2017"


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


def check_padding_mask(mask: torch.Tensor, tokens: torch.Tensor, model: str, what: str) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(tokens.shape):
        raise InputShapeError(
            f"{model} expects {what} as a bool tensor of shape {tuple(tokens.shape)} (True = "
            f"padding), like its tokens; got {mask.dtype} of shape {tuple(mask.shape)}."
        )


def key_mask(padding_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, S) padding mask -> (B, 1, 1, S) attention mask, True where a key may be attended."""
    return None if padding_mask is None else ~padding_mask[:, None, None, :]


def init_bert_style(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
