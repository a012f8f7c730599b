"""Positional encodings: fixed sinusoids and learned embeddings, added to token embeddings.

Sinusoids: Vaswani et al., "Attention Is All You Need" (NeurIPS 2017), section 3.5.
Both modules take an ``offset`` so that incremental decoding, which feeds the
positions after a KV cache one at a time, gets the same encodings as a full pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_encoding", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding"]


def sinusoidal_encoding(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The (T, dim) encodings of integer ``positions`` (T,).

    Channel ``2i`` holds ``sin(pos / base**(2i / dim))`` and channel ``2i + 1`` the
    cosine of the same angle, interleaved as in the paper.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dim; got {dim}")
    inv_freq = torch.exp(
        torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
        * (-math.log(base) / dim)
    )  # (dim / 2,)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]  # (T, dim / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (T, dim)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sinusoidal encodings to a (B, T, dim) sequence.

    The encodings are computed on the fly rather than stored: they cost little,
    add nothing to the state dict, and stay right for models built on the meta
    device and materialized later.

    Args:
        dim: model width (even).
        max_len: the longest sequence accepted (a sanity bound; the formula has none).
    """

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal encodings need an even dim; got {dim}")
        self.dim = dim
        self.max_len = max_len

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Add the encodings of positions ``offset .. offset + T - 1``."""
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)
        return x + sinusoidal_encoding(positions, self.dim).to(x.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_len={self.max_len}"


class LearnedPositionalEmbedding(nn.Module):
    """Adds one learned vector per position (GPT, BERT) to a (B, T, dim) sequence.

    Args:
        max_len: number of positions.
        dim: model width.
        init_std: standard deviation of the normal initialization.
    """

    def __init__(self, max_len: int, dim: int, *, init_std: float = 0.02) -> None:
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.empty(max_len, dim))
        nn.init.normal_(self.weight, std=init_std)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """Add the embeddings of positions ``offset .. offset + T - 1``."""
        return x + self.weight[offset : offset + x.shape[1]].to(x.dtype)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, dim={self.weight.shape[1]}"
