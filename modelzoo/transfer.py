"""Transfer learning helpers: adapting a model's input layer to a new channel count."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["adapt_input_conv_weight", "adapt_input_conv"]


def adapt_input_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Map a first-layer weight (out, c, kh, kw) to ``in_chans`` input channels.

    One channel takes the sum over the old channels (a grey image then gives
    the response an RGB image of equal channels gave); more channels repeat
    the old ones cyclically and rescale, so the activation scale is kept.
    """
    old = weight.shape[1]
    if in_chans == old:
        return weight.clone()
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_chans / old)
    return weight.repeat(1, repeats, 1, 1)[:, :in_chans] * (old / in_chans)


def adapt_input_conv(conv: nn.Conv2d, in_chans: int) -> nn.Conv2d:
    """A copy of ``conv`` taking ``in_chans`` channels, its weights adapted."""
    if conv.groups != 1:
        raise ValueError("adapting a grouped first convolution is not supported")
    new = nn.Conv2d(
        in_chans,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv_weight(conv.weight, in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def load_pretrained(model: nn.Module, source: object, *, strict: bool = False) -> object:
    """(Interface stub) Load weights from a weight set, file or URL into ``model``."""
    from modelzoo.errors import WeightsError

    raise WeightsError(f"cannot load pretrained weights from {source!r} yet")
