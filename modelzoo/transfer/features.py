"""Pooled features of a classifier, the input of a linear probe or an embedding."""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.transfer.parts import model_label

__all__ = ["extract_features"]


def extract_features(model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """Pooled features before the classifier: ``forward_head(..., pre_logits=True)``.

    The model's mode and autograd are left to the caller (``model.eval()``,
    ``torch.no_grad()``).
    """
    features = getattr(model, "forward_features", None)
    head = getattr(model, "forward_head", None)
    if not (callable(features) and callable(head)):
        raise ConfigError(
            f"{model_label(model)} has no forward_features/forward_head, so it has no pooled "
            "features; use create(name, features_only=True) for feature maps"
        )
    return head(features(*inputs), pre_logits=True)
