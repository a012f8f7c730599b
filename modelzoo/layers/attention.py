"""Multi-head attention through ``scaled_dot_product_attention``.

The fused ``qkv`` projection stacks the query, key and value weights in that
order, the layout of both timm's ViT (``qkv``) and ``nn.MultiheadAttention``
(``in_proj_weight``), so weights move between them without reshuffling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention"]


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
    ) -> torch.Tensor:
        """Attend over ``x`` of shape (B, T, C).

        Args:
            x: the sequence.
            attn_mask: boolean (True = may attend) or additive float mask,
                broadcastable to (B, num_heads, T, T).
            is_causal: mask out future positions.
        """
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, hd)
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
