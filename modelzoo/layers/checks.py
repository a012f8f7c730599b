"""Input validation that fails early, naming the expected and the actual shape.

Checks on shapes run everywhere (they are static under tracing and export);
checks on values (e.g. token ids) are skipped while tracing or compiling, where
they would make the graph data-dependent.
"""

from __future__ import annotations

import math

import torch

from modelzoo.errors import InputShapeError

__all__ = [
    "check_image",
    "check_features",
    "check_tokens",
    "check_sequence",
    "is_tracing",
    "skip_value_checks",
]


def is_tracing() -> bool:
    """True while torch.jit.trace, torch.export or torch.compile is capturing a graph."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def skip_value_checks(x: torch.Tensor) -> bool:
    """Whether checks that read tensor values must be skipped: while capturing a graph, or
    for meta tensors, which carry shapes but no values."""
    return is_tracing() or x.device.type == "meta"


def _shape(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def check_image(
    x: torch.Tensor,
    *,
    model: str,
    in_chans: int,
    min_size: int = 1,
    size: tuple[int, int] | None = None,
) -> None:
    """Check a (B, C, H, W) image batch.

    Args:
        x: the batch.
        model: the model's name, for the message.
        in_chans: the channel count the model was built with.
        min_size: the smallest height and width the model can reduce.
        size: the exact (H, W) the model needs, if fixed.
    """
    if size is not None:
        want = f"(B, {in_chans}, {size[0]}, {size[1]})"
    else:
        want = f"(B, {in_chans}, H, W) with H, W >= {min_size}"
    got = _shape(x)
    if x.ndim != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.ndim == 3 else ""
        raise InputShapeError(f"{model} expects images of shape {want}; got shape {got}.{hint}")
    if got[1] != in_chans:
        raise InputShapeError(
            f"{model} expects images of shape {want}; got {got[1]} channels in shape {got}. "
            f"Convert the images, or build the model with in_chans={got[1]}."
        )
    if size is not None and tuple(got[2:]) != tuple(size):
        raise InputShapeError(
            f"{model} expects images of shape {want}; got shape {got}. Resize the images, "
            f"or build the model with img_size={got[2] if got[2] == got[3] else got[2:]}."
        )
    if min(got[2:]) < min_size:
        raise InputShapeError(
            f"{model} expects images of shape {want}; got shape {got}, too small for its "
            f"downsampling. Resize or pad the images to at least {min_size}x{min_size}."
        )


def check_features(x: torch.Tensor, *, model: str, in_features: int) -> None:
    """Check a (..., in_features) batch of feature vectors."""
    got = _shape(x)
    if x.ndim != 2 or got[-1] != in_features:
        raise InputShapeError(
            f"{model} expects features of shape (B, {in_features}) (or per-sample tensors of "
            f"{in_features} elements); got shape {got}. Reshape the inputs, or build the model "
            f"with in_features={math.prod(got[1:]) if len(got) > 1 else got[0]}."
        )


def check_sequence(
    x: torch.Tensor, *, model: str, feature_size: int | None = None, max_len: int | None = None
) -> None:
    """Check a (B, T) token batch or a (B, T, feature_size) feature batch."""
    got = _shape(x)
    if feature_size is None:
        if x.ndim != 2:
            raise InputShapeError(f"{model} expects token ids of shape (B, T); got shape {got}.")
    elif x.ndim != 3 or got[-1] != feature_size:
        raise InputShapeError(
            f"{model} expects sequences of shape (B, T, {feature_size}); got shape {got}."
        )
    if max_len is not None and got[1] > max_len:
        raise InputShapeError(
            f"{model} takes sequences of at most max_len={max_len} steps; got {got[1]} in "
            f"shape {got}. Truncate the input, or build the model with max_len>={got[1]}."
        )


def check_tokens(
    x: torch.Tensor, *, model: str, vocab_size: int, max_len: int | None = None
) -> None:
    """Check a (B, T) batch of token ids: shape, integer dtype, and ids below vocab_size."""
    check_sequence(x, model=model, max_len=max_len)
    if x.dtype.is_floating_point or x.dtype == torch.bool:
        raise InputShapeError(
            f"{model} expects integer token ids; got dtype {x.dtype}. Use x.long()."
        )
    if skip_value_checks(x) or x.numel() == 0:
        return
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= vocab_size:
        raise InputShapeError(
            f"{model} expects token ids in [0, {vocab_size}); got ids in [{low}, {high}]. "
            f"Check the tokenizer, or build the model with vocab_size>={high + 1}."
        )
