"""Layer-type helpers: one place that turns strings into layer types."""

from __future__ import annotations

import difflib
import inspect

from torch import nn

from modelzoo.errors import ConfigError

__all__ = ["get_act_layer", "get_norm_layer", "get_norm_layer_or_none", "model_name", "LayerType"]

LayerType = type[nn.Module] | str | None

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "mish": nn.Mish,
    "identity": nn.Identity,
}

_NORMS: dict[str, type[nn.Module]] = {
    "batchnorm": nn.BatchNorm2d,
    "batchnorm1d": nn.BatchNorm1d,
    "batchnorm2d": nn.BatchNorm2d,
    "layernorm": nn.LayerNorm,
    "groupnorm": nn.GroupNorm,
    "instancenorm": nn.InstanceNorm2d,
    "identity": nn.Identity,
}


def _resolve(value: LayerType, table: dict[str, type[nn.Module]], what: str) -> type[nn.Module]:
    if value is None:
        return nn.Identity
    if isinstance(value, type) and issubclass(value, nn.Module):
        return value
    if isinstance(value, str):
        key = value.lower().replace("-", "_")
        if key in table:
            return table[key]
        close = difflib.get_close_matches(key, table, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown {what} {value!r}.{hint} Known: {', '.join(sorted(table))}, "
            f"or pass an nn.Module subclass."
        )
    raise ConfigError(
        f"{what} must be a name or an nn.Module subclass (e.g. nn.ReLU, not nn.ReLU()); "
        f"got {value!r}"
    )


def get_act_layer(value: LayerType) -> type[nn.Module]:
    """An activation type from a type or a name such as ``"gelu"``; None gives Identity."""
    return _resolve(value, _ACTIVATIONS, "activation")


def make_act(act_layer: type[nn.Module]) -> nn.Module:
    """An activation module, in place where the type allows it (``nn.ReLU(inplace=True)``).

    In-place activations save a feature map per layer in training and a memory pass in
    inference (torchvision's networks use them too); types without the flag (GELU) are
    built plainly.
    """
    if "inplace" in inspect.signature(act_layer).parameters:
        return act_layer(inplace=True)
    return act_layer()


def get_norm_layer(value: LayerType) -> type[nn.Module]:
    """A normalization type from a type or a name such as ``"batchnorm2d"``."""
    return _resolve(value, _NORMS, "normalization layer")


def get_norm_layer_or_none(value: LayerType) -> type[nn.Module] | None:
    """A normalization type, or None for no normalization.

    None and ``"identity"`` both mean none: ``create()`` drops None-valued keywords, so
    ``"identity"`` is how a caller of ``create`` asks for no normalization.
    """
    norm = get_norm_layer(value) if value is not None else None
    return None if norm is None or norm is nn.Identity else norm


def model_name(module: nn.Module, default: str | None = None) -> str:
    """The registered name of a model made by ``create`` (for messages), else ``default`` or its
    class name."""
    return getattr(module, "model_name", None) or default or type(module).__name__
