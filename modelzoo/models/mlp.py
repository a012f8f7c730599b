"""Multilayer perceptrons: the feedforward baseline.

Rumelhart, Hinton & Williams, "Learning representations by back-propagating
errors" (Nature, 1986).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modelzoo.layers import (
    LayerType,
    as_features,
    feature_inputs,
    get_act_layer,
    get_norm_layer,
    param_dtype,
)
from modelzoo.registry import register_model

__all__ = ["MLP"]

_PAPER = "Rumelhart et al., Learning representations by back-propagating errors, Nature 1986"


class MLPBlock(nn.Module):
    """Linear, then optional normalization, activation and dropout."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        act_layer: type[nn.Module],
        norm_layer: type[nn.Module] | None,
        drop_rate: float,
    ) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features, bias=norm_layer is None)
        self.norm = norm_layer(out_features) if norm_layer is not None else nn.Identity()
        self.act = act_layer()
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.fc(x))))


class MLP(nn.Module):
    """A stack of fully connected blocks and a linear classifier.

    Args:
        in_features: size of each input vector; inputs of more dimensions are
            flattened after the batch dimension, so images work as they are.
        num_classes: output size; 0 makes the head an identity.
        hidden_sizes: width of each hidden block.
        act_layer: activation type or name.
        norm_layer: normalization type or name (e.g. ``"batchnorm1d"``,
            ``"layernorm"``); None for none.
        drop_rate: dropout after each hidden block.
    """

    def __init__(
        self,
        in_features: int = 64,
        num_classes: int = 10,
        hidden_sizes: Sequence[int] = (256, 256),
        act_layer: LayerType = nn.ReLU,
        norm_layer: LayerType = None,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes needs at least one width; use a Linear layer instead")
        act = get_act_layer(act_layer)
        norm = get_norm_layer(norm_layer) if norm_layer is not None else None
        self.in_features = in_features
        self.num_classes = num_classes
        self.num_features = hidden_sizes[-1]
        self.default_input_size = None
        widths = [in_features, *hidden_sizes]
        self.blocks = nn.Sequential(
            *(MLPBlock(i, o, act, norm, drop_rate) for i, o in zip(widths, widths[1:]))
        )
        self.feature_info = [
            dict(num_chs=w, reduction=1, module=f"blocks.{i}") for i, w in enumerate(hidden_sizes)
        ]
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        name = getattr(self, "model_name", "mlp")
        x = as_features(x, in_features=self.in_features, model=name, dtype=param_dtype(self))
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _register(**kwargs: Any) -> Any:
    return register_model(
        family="mlp", task="classification", inputs=feature_inputs, paper=_PAPER, **kwargs
    )


@_register()
def mlp(*, in_features: int = 64, num_classes: int = 10, **kwargs: Any) -> MLP:
    """Two hidden layers of 256 units: sized for 8x8 digits.

    Dropout keywords: ``drop_rate`` is dropout after every hidden block (the last one feeds the
    classifier).
    """
    model_args = dict(in_features=in_features, num_classes=num_classes, hidden_sizes=(256, 256))
    return MLP(**dict(model_args, **kwargs))


@_register()
def mlp_small(*, in_features: int = 64, num_classes: int = 10, **kwargs: Any) -> MLP:
    """One hidden layer of 64 units.

    Dropout keywords: ``drop_rate`` is dropout after every hidden block (the last one feeds the
    classifier).
    """
    model_args = dict(in_features=in_features, num_classes=num_classes, hidden_sizes=(64,))
    return MLP(**dict(model_args, **kwargs))


@_register()
def mlp_large(*, in_features: int = 784, num_classes: int = 10, **kwargs: Any) -> MLP:
    """Three hidden layers of 1024 units with batch norm and dropout: sized for 28x28 images.

    Dropout keywords: ``drop_rate`` is dropout after every hidden block (the last one feeds the
    classifier).
    """
    model_args = dict(
        in_features=in_features,
        num_classes=num_classes,
        hidden_sizes=(1024, 1024, 1024),
        norm_layer="batchnorm1d",
        drop_rate=0.1,
    )
    return MLP(**dict(model_args, **kwargs))
