"""Stochastic depth (DropPath), shared by every family with residual branches.

Huang et al., "Deep Networks with Stochastic Depth" (ECCV 2016).
"""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.layers.tracing import graph_leaf

__all__ = ["DropPath", "drop_path"]


@graph_leaf  # its per-sample mask reads x.ndim, which FX symbolic tracing cannot
def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero a residual branch ``x`` for whole samples with probability ``drop_prob``.

    Kept samples are scaled by ``1 / (1 - drop_prob)`` so the expected output is
    unchanged and evaluation needs no rescaling. Outside training it returns ``x``.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    # One draw per sample, broadcast over every other dimension.
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
    if keep_prob > 0.0:
        mask = mask / keep_prob
    return x * mask


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch for whole samples, in training only.

    Args:
        drop_prob: probability of dropping the branch for a sample.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob <= 1.0:
            raise ConfigError(f"drop path probability must be in [0, 1]; got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
