"""Fitting pretrained tensors to a changed model.

- input channels of the first convolution (:func:`adapt_input_conv_weight`);
- the grid of a learned absolute position embedding, for a Vision Transformer built for
  another image size (:func:`resample_grid_embedding`, :func:`resample_position_embedding`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "adapt_input_conv_weight",
    "adapt_input_conv",
    "adapt_reason",
    "resample_grid_embedding",
    "resample_position_embedding",
]

_logger = logging.getLogger(__name__)


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


def resample_grid_embedding(
    pos_embed: torch.Tensor,
    new_grid: Sequence[int],
    old_grid: Sequence[int] | None = None,
    *,
    num_prefix_tokens: int = 1,
) -> torch.Tensor:
    """Resize a learned position embedding (1, P + gh * gw, C) to another patch grid.

    The first ``num_prefix_tokens`` rows (class and other prefix tokens) have no place on
    the grid and are kept as they are; the rest are laid out as a (C, gh, gw) image in
    row-major order and resized with antialiased bicubic interpolation (``align_corners``
    off), computed in float32 and returned in the input's dtype. That is what timm does
    when it loads ViT weights at another image size, so the same weights give the same
    outputs in both libraries.

    Args:
        pos_embed: the embedding, (1, P + N, C).
        new_grid: the (rows, columns) of patches wanted.
        old_grid: the grid ``pos_embed`` was learned for; None means square.
        num_prefix_tokens: P, the rows before the grid.

    Returns:
        The embedding (1, P + new_rows * new_columns, C).

    Raises:
        ValueError: the embedding's length does not fit ``old_grid`` (or no square grid).
    """
    grid_tokens = pos_embed.shape[1] - num_prefix_tokens
    if old_grid is None:
        side = math.isqrt(max(grid_tokens, 0))
        if side * side != grid_tokens:
            raise ValueError(
                f"a position embedding of {pos_embed.shape[1]} rows with {num_prefix_tokens} "
                f"prefix token(s) leaves {grid_tokens} grid rows, not a square grid; pass "
                "old_grid=(rows, columns)"
            )
        old_grid = (side, side)
    old_h, old_w = int(old_grid[0]), int(old_grid[1])
    if old_h * old_w != grid_tokens:
        raise ValueError(
            f"old_grid={old_h}x{old_w} needs {old_h * old_w} grid rows; the position embedding "
            f"has {grid_tokens} after {num_prefix_tokens} prefix token(s)"
        )
    new_h, new_w = int(new_grid[0]), int(new_grid[1])
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = grid.shape[-1]
    image = grid.float().reshape(1, old_h, old_w, dim).permute(0, 3, 1, 2)  # (1, C, gh, gw)
    image = F.interpolate(
        image, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True
    )
    grid = image.permute(0, 2, 3, 1).reshape(1, new_h * new_w, dim).to(pos_embed.dtype)
    return torch.cat([prefix, grid], dim=1)


def _grid_embedders(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules with a learned grid position embedding: ``pos_embed`` (1, P + N, C) for the
    patch grid ``grid_size`` after ``num_prefix_tokens`` rows (the zoo's and timm's ViT)."""
    found = []
    for prefix, module in model.named_modules():
        pos_embed = getattr(module, "pos_embed", None)
        grid = getattr(module, "grid_size", None)
        if (
            isinstance(pos_embed, torch.Tensor)
            and pos_embed.dim() == 3
            and isinstance(grid, tuple)
            and len(grid) == 2
            and isinstance(getattr(module, "num_prefix_tokens", None), int)
        ):
            found.append((f"{prefix}.pos_embed" if prefix else "pos_embed", module))
    return found


def resample_position_embedding(
    state_dict: Mapping[str, torch.Tensor], model: nn.Module
) -> dict[str, tuple[torch.Tensor, str]]:
    """Position embeddings of ``state_dict`` resampled to ``model``'s patch grids.

    For each module of ``model`` with a learned grid position embedding (a ``pos_embed``
    for the patch grid ``grid_size`` after ``num_prefix_tokens`` class/prefix rows, as in a
    ViT) whose tensor in ``state_dict`` has another number of grid rows, the file's
    embedding is resampled with :func:`resample_grid_embedding`; its grid is taken to be
    square (how ViT weights are published). Nothing is changed in place.

    Returns:
        ``{key: (resampled tensor, reason)}`` for each embedding that was resampled; keys
        whose embedding already fits, or that cannot be resampled (another width, or no
        square grid), are left out for the caller's shape check to report.
    """
    out: dict[str, tuple[torch.Tensor, str]] = {}
    for key, module in _grid_embedders(model):
        tensor = state_dict.get(key)
        target = module.pos_embed
        if tensor is None or tensor.dim() != 3 or tuple(tensor.shape) == tuple(target.shape):
            continue
        if tensor.shape[0] != 1 or tensor.shape[2] != target.shape[2]:
            continue
        prefix = module.num_prefix_tokens
        grid_tokens = tensor.shape[1] - prefix
        side = math.isqrt(max(grid_tokens, 0))
        if grid_tokens < 1 or side * side != grid_tokens:
            continue
        new_grid = tuple(int(n) for n in module.grid_size)
        resampled = resample_grid_embedding(
            tensor, new_grid, (side, side), num_prefix_tokens=prefix
        )
        reason = (
            f"position embedding resampled (bicubic) from a {side}x{side} patch grid to "
            f"{new_grid[0]}x{new_grid[1]}, {prefix} prefix token(s) kept"
        )
        _logger.info("%s: %s", key, reason)
        out[key] = (resampled, reason)
    return out
