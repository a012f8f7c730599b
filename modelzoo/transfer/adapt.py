"""Fitting pretrained tensors to a changed model: input channels of the first convolution."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["adapt_input_conv_weight", "adapt_input_conv", "adapt_reason"]


def adapt_input_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Map a first-layer weight ``(out, c, *kernel)`` to ``in_chans`` input channels.

    Fewer channels fold the old ones onto the new (channel ``i`` is added to
    ``i % in_chans``; to one channel: the sum), so a grey image gives the
    response its RGB replica gave. More channels repeat the old ones
    cyclically and rescale by ``c / in_chans``, which keeps the activation
    scale (exactly so when the new input repeats the old channels).
    """
    if in_chans < 1:
        raise ValueError(f"in_chans must be at least 1; got {in_chans}")
    old = weight.shape[1]
    if in_chans == old:
        return weight.clone()
    if in_chans < old:
        folded = weight.new_zeros((weight.shape[0], in_chans, *weight.shape[2:]))
        for i in range(old):
            folded[:, i % in_chans] += weight[:, i]
        return folded
    repeats = math.ceil(in_chans / old)
    tiled = weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))
    return tiled[:, :in_chans] * (old / in_chans)


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


def adapt_reason(old: int, new: int) -> str:
    if new < old:
        how = "summed" if new == 1 else f"folded (channel i added to i mod {new})"
        return f"input channels {old} -> {new}: pretrained channels {how}"
    return f"input channels {old} -> {new}: pretrained channels repeated, scaled by {old}/{new}"
