"""The parts of a model that transfer learning treats specially: the head, the input layer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from torch import nn

__all__ = ["is_under", "head_prefixes", "first_conv_key", "model_label"]


def model_label(model: nn.Module) -> str:
    """The model's registered name, else its class name (for messages)."""
    return getattr(model, "model_name", None) or type(model).__name__


def is_under(name: str, prefixes: Iterable[str]) -> bool:
    return any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Dotted names of the classifier head: ``get_classifier()``, else the last Linear."""
    for prefix, module in model.named_modules():
        getter = getattr(module, "get_classifier", None)
        if not callable(getter):
            continue
        try:
            classifier = getter()
        except Exception:  # a model whose get_classifier needs arguments, or fails
            break
        if isinstance(classifier, nn.Module):
            for name, sub in module.named_modules():
                if sub is classifier and name:
                    return (f"{prefix}.{name}" if prefix else name,)
        break
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return (last,) if last else ()


def first_conv_key(model: nn.Module, hint: str | None, model_keys: set[str]) -> str | None:
    """The weight key of the model's input convolution (a hint from the weights wins)."""
    cfg = getattr(model, "pretrained_cfg", None)  # timm models name theirs
    if hint is None and isinstance(cfg, Mapping) and isinstance(cfg.get("first_conv"), str):
        hint = cfg["first_conv"]
    if hint:
        key = hint if hint.endswith(".weight") else f"{hint}.weight"
        for candidate in (key, f"model.{key}"):
            if candidate in model_keys:
                return candidate
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return f"{name}.weight" if module.groups == 1 else None
    return None
