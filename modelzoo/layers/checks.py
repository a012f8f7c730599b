"""Input validation that fails early, naming the expected and the actual input and the fix.

How the checks behave when a graph is captured:

* ``torch.export`` and ``torch.compile`` run them on fake tensors whose batch
  size may be symbolic. The checks compare only the dimensions a model fixes
  (channels, feature sizes, image sizes) and read the batch size only to word
  an error, so an exported program keeps a dynamic batch.
* ``torch.fx`` symbolic tracing records each check as one call in the graph
  (``graph_leaf``), so the traced ``GraphModule`` still checks its inputs.
* Checks on values (e.g. token ids below the vocabulary size) are skipped while
  capturing a graph or on the meta device, where there are no values.

dtype checks compare a floating input with the model's compute dtype (its
parameters' dtype, e.g. bfloat16 for a model converted with ``model.bfloat16()``);
under autocast the comparison is skipped, since autocast casts the inputs itself.
"""

from __future__ import annotations

import math

import torch

from modelzoo.errors import InputShapeError
from modelzoo.layers.tracing import graph_leaf, is_tracing

__all__ = [
    "as_features",
    "autocast_enabled",
    "check_image",
    "check_features",
    "check_tokens",
    "check_sequence",
    "check_float_dtype",
    "is_tracing",
    "param_dtype",
    "skip_value_checks",
]


def skip_value_checks(x: torch.Tensor) -> bool:
    """Whether checks that read tensor values must be skipped: while capturing a graph, or
    for meta tensors, which carry shapes but no values."""
    return is_tracing() or x.device.type == "meta"


def param_dtype(module: torch.nn.Module) -> torch.dtype | None:
    """The dtype a module computes in: that of its first floating-point parameter (None if none)."""
    for p in module.parameters():
        if p.is_floating_point():
            return p.dtype
    return None


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for a device type (False for types without autocast, e.g. meta)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


def _shape(x: torch.Tensor) -> tuple[int | torch.SymInt, ...]:
    # Only for messages: int() on a symbolic size would pin it to its example value.
    return tuple(x.shape)


def _shape_str(x: torch.Tensor) -> str:
    return "(" + ", ".join(str(d) for d in x.shape) + ("," if x.ndim == 1 else "") + ")"


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@graph_leaf
def check_float_dtype(
    x: torch.Tensor, *, model: str, what: str, dtype: torch.dtype | None = None
) -> None:
    """Check that ``x`` holds floats of the model's dtype.

    Args:
        x: the input.
        model: the model's name, for the message.
        what: what the input is (``"images"``, ``"features"``), for the message.
        dtype: the model's compute dtype; None accepts any floating dtype.

    Raises:
        InputShapeError: an integer or boolean input (uint8 images are told to be scaled
            with ``x.float() / 255``), or a floating input of another dtype than the
            model's outside autocast.
    """
    want = _dtype_name(dtype) if dtype is not None else "a floating dtype"
    if not x.dtype.is_floating_point:
        if x.dtype == torch.uint8:
            fix = "Convert with x.float() / 255 (and normalize as the model expects)."
        else:
            fix = "Convert with x.float()."
        raise InputShapeError(
            f"{model} expects {what} of dtype {want}; got dtype {_dtype_name(x.dtype)}. {fix}"
        )
    if dtype is None or x.dtype == dtype or autocast_enabled(x.device.type):
        return
    if dtype == torch.float32:
        fix = "Convert with x.float()"
    else:
        fix = f"Convert with x.to(torch.{_dtype_name(dtype)})"
    raise InputShapeError(
        f"{model} expects {what} of dtype {want} (the dtype of its parameters); got dtype "
        f"{_dtype_name(x.dtype)}. {fix}, or convert the model with "
        f"model.to(torch.{_dtype_name(x.dtype)})."
    )


@graph_leaf
def check_image(
    x: torch.Tensor,
    *,
    model: str,
    in_chans: int,
    min_size: int = 1,
    size: tuple[int, int] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Check a (B, C, H, W) image batch.

    Args:
        x: the batch.
        model: the model's name, for the message.
        in_chans: the channel count the model was built with.
        min_size: the smallest height and width the model can reduce.
        size: the exact (H, W) the model needs, if fixed.
        dtype: the model's compute dtype (see ``param_dtype``); None skips the dtype check
            (integer images are refused either way).
    """
    if size is not None:
        want = f"(B, {in_chans}, {size[0]}, {size[1]})"
    else:
        want = f"(B, {in_chans}, H, W) with H, W >= {min_size}"
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3 and x.shape[-1] == in_chans and x.shape[0] != in_chans:
            hint = (
                " It looks like one channels-last image (H, W, C): use "
                "x.permute(2, 0, 1).unsqueeze(0)."
            )
        elif x.ndim == 3:
            hint = " Add a batch dimension with x.unsqueeze(0)."
        raise InputShapeError(
            f"{model} expects images of shape {want}; got shape {_shape_str(x)}.{hint}"
        )
    if x.shape[1] != in_chans:
        if x.shape[3] == in_chans:
            raise InputShapeError(
                f"{model} expects images of shape {want} (channels first, NCHW); got shape "
                f"{_shape_str(x)}, which looks channels-last (B, H, W, C). Permute to NCHW "
                "with x.permute(0, 3, 1, 2)."
            )
        raise InputShapeError(
            f"{model} expects images of shape {want}; got {x.shape[1]} channels in shape "
            f"{_shape_str(x)}. Convert the images, or build the model with "
            f"in_chans={x.shape[1]}."
        )
    if size is not None and (x.shape[2] != size[0] or x.shape[3] != size[1]):
        h, w = x.shape[2], x.shape[3]
        raise InputShapeError(
            f"{model} expects images of shape {want}; got shape {_shape_str(x)}. Resize the "
            f"images, or build the model with img_size={h if h == w else (h, w)}."
        )
    if x.shape[2] < min_size or x.shape[3] < min_size:
        raise InputShapeError(
            f"{model} expects images of shape {want}; got shape {_shape_str(x)}, too small for "
            f"its downsampling. Resize or pad the images to at least {min_size}x{min_size}."
        )
    check_float_dtype(x, model=model, what="images", dtype=dtype)


@graph_leaf
def check_features(
    x: torch.Tensor, *, model: str, in_features: int, dtype: torch.dtype | None = None
) -> None:
    """Check a (B, in_features) batch of feature vectors (shape, and floats of ``dtype``)."""
    if x.ndim != 2 or x.shape[-1] != in_features:
        got = _shape(x)
        size = math.prod(got[1:]) if len(got) > 1 else (got[0] if got else 1)
        raise InputShapeError(
            f"{model} expects features of shape (B, {in_features}) (or per-sample tensors of "
            f"{in_features} elements); got shape {_shape_str(x)}. Reshape the inputs, or build "
            f"the model with in_features={size}."
        )
    check_float_dtype(x, model=model, what="features", dtype=dtype)


@graph_leaf  # branches on the input's shape, which FX symbolic tracing cannot
def as_features(
    x: torch.Tensor, *, model: str, in_features: int, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Flatten per-sample tensors of ``in_features`` elements (e.g. images) to (B, in_features)
    and check the result as ``check_features`` does."""
    if x.ndim > 2 and math.prod(x.shape[1:]) == in_features:
        x = x.flatten(1)
    check_features(x, model=model, in_features=in_features, dtype=dtype)
    return x


@graph_leaf
def check_sequence(
    x: torch.Tensor,
    *,
    model: str,
    feature_size: int | None = None,
    max_len: int | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Check a (B, T) token batch or a (B, T, feature_size) feature batch.

    Args:
        x: the batch.
        model: the model's name, for the message.
        feature_size: features per step; None for token ids (B, T).
        max_len: the most steps the model takes.
        dtype: for feature sequences, the model's compute dtype (features must be floats
            either way); ignored for token ids.
    """
    if feature_size is None:
        if x.ndim != 2:
            raise InputShapeError(
                f"{model} expects token ids of shape (B, T); got shape {_shape_str(x)}."
            )
    elif x.ndim != 3 or x.shape[-1] != feature_size:
        raise InputShapeError(
            f"{model} expects sequences of shape (B, T, {feature_size}); got shape {_shape_str(x)}."
        )
    if max_len is not None and x.shape[1] > max_len:
        steps = x.shape[1]
        raise InputShapeError(
            f"{model} takes sequences of at most max_len={max_len} steps; got {steps} in "
            f"shape {_shape_str(x)}. Truncate the input, or build the model with "
            f"max_len>={steps}."
        )
    if feature_size is not None:
        check_float_dtype(x, model=model, what="feature sequences", dtype=dtype)


@graph_leaf
def check_tokens(
    x: torch.Tensor, *, model: str, vocab_size: int, max_len: int | None = None
) -> None:
    """Check a (B, T) batch of token ids: shape, integer dtype, and ids below vocab_size."""
    check_sequence(x, model=model, max_len=max_len)
    if x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise InputShapeError(
            f"{model} expects integer token ids; got dtype {_dtype_name(x.dtype)}. Use x.long()."
        )
    if skip_value_checks(x) or x.numel() == 0:
        return
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= vocab_size:
        raise InputShapeError(
            f"{model} expects token ids in [0, {vocab_size}); got ids in [{low}, {high}]. "
            f"Check the tokenizer, or build the model with vocab_size>={high + 1}."
        )
