"""Where a model lives."""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's first parameter, else of its first buffer, else the CPU.

    A model may have no parameters at all (a dynamically quantized network keeps its int8
    weights in packed buffers; a parameter-free preprocessing module), so ``next(
    model.parameters())`` is not an answer for every model.
    """
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")
