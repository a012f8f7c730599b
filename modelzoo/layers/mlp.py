"""The Transformer's position-wise feed-forward network, shared by every family that uses it."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """Linear, activation, dropout, Linear, dropout: the feed-forward block of a Transformer.

    The module names (``fc1``, ``act``, ``drop1``, ``fc2``, ``drop2``) are those of
    timm's ``Mlp``, so ViT weights load without remapping; ``nn.TransformerEncoderLayer``'s
    ``linear1``/``linear2`` map to ``fc1``/``fc2``.

    Args:
        in_features: input width.
        hidden_features: hidden width; defaults to ``in_features``.
        out_features: output width; defaults to ``in_features``.
        act_layer: activation type, called without arguments.
        drop: dropout after the activation and after ``fc2``.
        bias: whether both linear layers have a bias.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
