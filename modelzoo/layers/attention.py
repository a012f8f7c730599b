"""Multi-head attention through ``scaled_dot_product_attention``.

The fused ``qkv`` projection stacks the query, key and value weights in that
order, the layout of both timm's ViT (``qkv``) and ``nn.MultiheadAttention``
(``in_proj_weight``), so weights move between them without reshuffling.
``CrossAttention`` splits the same stack into ``q`` and a fused ``kv``.

Incremental decoding passes a ``KVCache`` per layer: the keys and values of
the positions seen so far are kept, so each new token costs one row of
attention instead of a full recomputation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "CrossAttention", "KVCache", "causal_mask"]


class KVCache:
    """The keys and values one attention layer has computed so far, for incremental decoding.

    Self-attention appends the new positions at every call; cross-attention
    stores the keys and values of its context once and reuses them.
    """

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None  # (B, nh, T, hd)
        self.v: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add new (B, nh, T_new, hd) keys and values; return all of them."""
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat([self.k, k], dim=2)
            self.v = torch.cat([self.v, v], dim=2)
        return self.k, self.v

    def reorder(self, index: torch.Tensor) -> None:
        """Keep the batch rows ``index`` (beam search follows each beam's parent)."""
        if self.k is not None and self.v is not None:
            self.k = self.k.index_select(0, index)
            self.v = self.v.index_select(0, index)


def causal_mask(q_len: int, k_len: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (q_len, k_len) mask, True where a query may attend a key.

    The queries are the last ``q_len`` of ``k_len`` positions, so query ``i``
    sees keys ``0 .. k_len - q_len + i``. SDPA's own ``is_causal`` aligns the
    mask to the top left instead, which is only right when ``q_len == k_len``.
    """
    q_pos = torch.arange(k_len - q_len, k_len, device=device)
    return torch.arange(k_len, device=device)[None, :] <= q_pos[:, None]


def _merge_masks(attn_mask: torch.Tensor | None, allowed: torch.Tensor) -> torch.Tensor:
    """Restrict an optional boolean or additive mask to the positions ``allowed``."""
    if attn_mask is None:
        return allowed
    if attn_mask.dtype == torch.bool:
        return attn_mask & allowed
    return attn_mask.masked_fill(~allowed, float("-inf"))


class Attention(nn.Module):
    """Multi-head self-attention.

    Args:
        dim: model width.
        num_heads: number of heads; must divide ``dim``.
        qkv_bias: whether the q, k, v projections have a bias.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend over ``x`` of shape (B, T, C).

        Args:
            x: the sequence.
            attn_mask: boolean (True = may attend) or additive float mask,
                broadcastable to (B, num_heads, T, T) (T + cached length
                columns when ``kv_cache`` holds past positions).
            is_causal: mask out future positions.
            kv_cache: keys and values of earlier positions; ``x`` holds the
                positions that follow them, and its keys and values are
                appended to the cache.
        """
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, hd)
        if kv_cache is not None:
            past = len(kv_cache)
            k, v = kv_cache.append(k, v)  # each (B, nh, past + T, hd)
            if is_causal and past:
                # A single new query may see every cached key; more need an offset mask.
                if T > 1:
                    attn_mask = _merge_masks(attn_mask, causal_mask(T, past + T, x.device))
                is_causal = False
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.attn_drop if self.training else 0.0,
            is_causal=is_causal,
        )
        out = out.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj_drop(self.proj(out))


class CrossAttention(nn.Module):
    """Multi-head attention from a sequence to a context (the encoder-decoder attention).

    ``q`` and the fused ``kv`` are the query and the key;value rows of
    ``nn.MultiheadAttention.in_proj_weight``.

    Args:
        dim: width of the attending sequence (and of the output).
        num_heads: number of heads; must divide ``dim``.
        context_dim: width of the context; defaults to ``dim``.
        qkv_bias: whether the q, k, v projections have a bias.
        attn_drop: dropout on the attention weights (training only).
        proj_drop: dropout after the output projection.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        *,
        context_dim: int | None = None,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(context_dim or dim, dim * 2, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Attend from ``x`` (B, T, C) to ``context`` (B, S, C_ctx).

        Args:
            x: the attending sequence.
            context: the sequence attended to (e.g. the encoder output).
            attn_mask: boolean (True = may attend) or additive float mask,
                broadcastable to (B, num_heads, T, S).
            kv_cache: when it is empty, the context's keys and values are
                stored in it; when it is filled, they are reused and
                ``context`` is not read.
        """
        B, T, C = x.shape
        q = self.q(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        if kv_cache is not None and len(kv_cache):
            k, v = kv_cache.k, kv_cache.v
        else:
            S = context.shape[1]
            kv = self.kv(context).view(B, S, 2, self.num_heads, self.head_dim)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, S, hd)
            if kv_cache is not None:
                kv_cache.append(k, v)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop if self.training else 0.0
        )
        out = out.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj_drop(self.proj(out))
