"""Input specs shared by the families' registrations (see ``register_model(inputs=...)``)."""

from __future__ import annotations

import torch
from torch import nn

from modelzoo.registry import TensorSpec

__all__ = ["image_inputs", "feature_inputs", "token_inputs"]


def image_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    """One (in_chans, H, W) image; the model states ``in_chans`` and ``default_input_size``."""
    h, w = model.default_input_size
    return (TensorSpec((model.in_chans, h, w), name="images"),)


def feature_inputs(model: nn.Module) -> tuple[TensorSpec, ...]:
    """One feature vector of the model's ``in_features``."""
    return (TensorSpec((model.in_features,), name="features"),)


def token_inputs(model: nn.Module, seq_len: int = 16) -> tuple[TensorSpec, ...]:
    """One sequence of token ids below the model's ``vocab_size``."""
    seq_len = min(seq_len, getattr(model, "max_len", seq_len))
    return (TensorSpec((seq_len,), torch.long, 0, model.vocab_size, name="tokens"),)
