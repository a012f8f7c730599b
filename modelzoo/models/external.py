"""Bridges to timm and torchvision: ``create("timm/<name>")``, ``create("torchvision/<name>")``.

Both libraries are imported only when such a name is used. The zoo's keyword
conventions hold across the bridge: ``num_classes``, ``in_chans`` and
``drop_rate`` mean the same thing as for native models.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, UnknownModelError, WeightsError

__all__ = [
    "create_external",
    "list_external",
    "describe_external",
    "external_task",
    "ExternalFacts",
]

# torchvision modules whose builders we list, and the task each serves.
_TORCHVISION_TASKS = {
    "": "image_classification",
    "detection": "detection",
    "segmentation": "segmentation",
}


def _split(name: str) -> tuple[str, str]:
    source, _, arch = name.partition("/")
    if not arch:
        raise UnknownModelError(f"{name!r} names no model after {source + '/'!r}")
    return source, arch


@functools.cache
def _torchvision_names() -> dict[str, str]:
    """torchvision builder name → task."""
    models = importlib.import_module("torchvision.models")
    names: dict[str, str] = {}
    for submodule, task in _TORCHVISION_TASKS.items():
        module = importlib.import_module(f"torchvision.models.{submodule}") if submodule else models
        for arch in models.list_models(module=module):
            names.setdefault(arch, task)
    return names


def _unknown(source: str, arch: str, known: list[str]) -> UnknownModelError:
    matches = difflib.get_close_matches(arch, known, n=5, cutoff=0.6)
    hint = f" Did you mean: {', '.join(f'{source}/{m}' for m in matches)}?" if matches else ""
    return UnknownModelError(
        f"{source} has no model named {arch!r}.{hint} See "
        f"modelzoo.list_models('{source}/*', include_external=True)."
    )


def _first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            parent_name, _, child = name.rpartition(".")
            return model.get_submodule(parent_name), child, module
    raise ConfigError(f"{type(model).__name__} has no Conv2d layer, so in_chans cannot apply")


def _set_in_chans(model: nn.Module, in_chans: int) -> None:
    """Rebuild the first convolution of a (randomly initialized) model for in_chans."""
    parent, child, conv = _first_conv(model)
    if conv.in_channels == in_chans:
        return
    from modelzoo.transfer import adapt_input_conv

    setattr(parent, child, adapt_input_conv(conv, in_chans))


def _create_torchvision(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    if arch not in _torchvision_names():
        raise _unknown("torchvision", arch, list(_torchvision_names()))
    models = importlib.import_module("torchvision.models")
    in_chans = kwargs.pop("in_chans", None)
    if "drop_rate" in kwargs:
        kwargs["dropout"] = kwargs.pop("drop_rate")
    task = _torchvision_names()[arch]
    if task in ("detection", "segmentation"):
        kwargs.setdefault("weights_backbone", None)  # never fetch ImageNet backbone weights
    if task == "detection" and "num_classes" in kwargs:
        # The zoo's num_classes counts object classes (labels 1..K); torchvision's detectors
        # count the background (label 0) as well.
        kwargs["num_classes"] += 1
    try:
        model = models.get_model(arch, weights=None, **kwargs)
    except TypeError as err:
        builder = models.get_model_builder(arch)
        raise ConfigError(
            f"torchvision/{arch} does not take {sorted(kwargs)}: {err}. Its builder is "
            f"torchvision.models.{builder.__name__}{inspect.signature(builder)}"
        ) from err
    if in_chans is not None:
        _set_in_chans(model, in_chans)
    return model


def _create_timm(arch: str, kwargs: dict[str, Any]) -> nn.Module:
    timm = importlib.import_module("timm")
    if not timm.is_model(arch):
        raise _unknown("timm", arch, timm.list_models())
    try:
        return timm.create_model(arch, pretrained=False, **kwargs)
    except TypeError as err:
        raise ConfigError(
            f"timm/{arch} does not take the arguments {sorted(kwargs)}: {err}"
        ) from err


def create_external(
    name: str, *, pretrained: bool | str = False, strict: bool = False, **kwargs: Any
) -> nn.Module:
    """Build a timm or torchvision model with the zoo's keyword conventions.

    ``pretrained`` may be a local file or a URL (fetched and verified like any
    weights); the libraries' own hubs are never contacted.
    """
    source, arch = _split(name)
    if pretrained is True:
        raise WeightsError(
            f"{name}: pretrained=True would fetch from {source}'s hub, which modelzoo never "
            "contacts; pass a local file or URL (pretrained='path/to/weights.pth'), or use a "
            "native model's weight set (modelzoo.list_models(pretrained=True))."
        )
    init_kwargs = dict(kwargs)  # the builders below consume their copy
    model = _create_timm(arch, kwargs) if source == "timm" else _create_torchvision(arch, kwargs)
    model.model_name = name
    model.init_kwargs = init_kwargs
    if pretrained:
        from modelzoo.transfer import load_pretrained

        model.load_report = load_pretrained(model, pretrained, strict=strict)
    return model


def list_external(*, family: str | None = None, task: str | None = None) -> list[str]:
    """External model names, ``timm/...`` and ``torchvision/...``."""
    if family not in (None, "external"):
        return []
    names = [
        f"torchvision/{arch}"
        for arch, arch_task in _torchvision_names().items()
        if task in (None, arch_task)
    ]
    if task in (None, "image_classification"):
        timm = importlib.import_module("timm")
        names.extend(f"timm/{arch}" for arch in timm.list_models())
    return names


@dataclass(frozen=True)
class ExternalFacts:
    """What the registry's card of an external model needs (built on the meta device)."""

    task: str
    num_params: int
    input_size: tuple[int, ...]
    num_classes: int | None
    builder: str


def describe_external(name: str) -> ExternalFacts:
    """Facts about an external model, built on the meta device."""
    source, arch = _split(name)
    with torch.device("meta"):
        model = create_external(name)
    if source == "timm":
        timm = importlib.import_module("timm")
        input_size = tuple(timm.get_pretrained_cfg_value(arch, "input_size") or (3, 224, 224))
        task = "image_classification"
        builder = f"timm.models:{arch}"
    else:
        input_size = (3, 224, 224)
        task = _torchvision_names()[arch]
        fn = importlib.import_module("torchvision.models").get_model_builder(arch)
        builder = f"{fn.__module__}:{fn.__qualname__}"
    num_classes = getattr(model, "num_classes", None)
    return ExternalFacts(
        task=task,
        num_params=sum(p.numel() for p in model.parameters()),
        input_size=input_size,
        num_classes=num_classes if isinstance(num_classes, int) else None,
        builder=builder,
    )


def external_task(name: str) -> str:
    """The task of an external model, without building it (cheap, for listings)."""
    source, arch = _split(name)
    if source == "timm":
        return "image_classification"
    if arch not in _torchvision_names():
        raise _unknown("torchvision", arch, list(_torchvision_names()))
    return _torchvision_names()[arch]
