"""Bridges to timm and torchvision: ``create("timm/<name>")``, ``create("torchvision/<name>")``.

Both libraries are imported only when such a name is used. The zoo's keyword
conventions hold across the bridge: ``num_classes``, ``in_chans`` and
``drop_rate`` mean the same thing as for native models, and ``pretrained``
takes the same forms:

- ``False``: random initialization;
- ``True``: the library's default weights for the architecture;
- a tag the library publishes (``"IMAGENET1K_V1"``, ``"a1_in1k"``), also written
  into the name (``torchvision/resnet18.IMAGENET1K_V1``, ``timm/resnet18.a1_in1k``);
  for torchvision a ``WeightsEnum`` member works too, and ``weights=`` is accepted
  as torchvision's spelling of ``pretrained=``;
- a local file or directory, or a URL.

Library weights are downloaded through :func:`modelzoo.weights.fetch` (cache,
lock, resume, ``MODELZOO_MIRROR``, ``MODELZOO_OFFLINE``), never through the
libraries' own hubs, and loaded with the zoo's loader, so the model carries a
``load_report``. torchvision publishes the first 8 hex digits of each file's
sha256 in its name (``resnet18-f37072fd.pth``): that prefix is checked. timm
publishes no digest, so its files follow the rule for unverified downloads
(``MODELZOO_ALLOW_UNVERIFIED=1``, or pass the file you downloaded).

``features_only=True`` returns an :class:`ExternalFeatures`: timm models through
their own ``forward_intermediates``, torchvision models through
``torchvision.models.feature_extraction.create_feature_extractor``, both with the
interface of the zoo's feature extractors (``channels()``, ``reductions()``,
``feature_info``, ``out_indices``).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import inspect
import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from modelzoo.errors import (
    ConfigError,
    IntegrityError,
    OfflineError,
    UnknownModelError,
    WeightsError,
)

__all__ = [
    "create_external",
    "list_external",
    "describe_external",
    "external_task",
    "resolve_external_weights",
    "ExternalFacts",
    "ExternalFeatures",
    "ExternalWeights",
]

_logger = logging.getLogger(__name__)

# torchvision modules whose builders we list, and the task each serves.
_TORCHVISION_TASKS = {
    "": "image_classification",
    "detection": "detection",
    "segmentation": "segmentation",
}
# torchvision names its weight files <name>-<first hex digits of the sha256>.<ext> (the
# torch.hub convention, which torch.hub itself checks with this pattern).
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
# Where the Hugging Face Hub serves a file of a repo; the one place a Hub address is built
# (a later hf-hub: bridge swaps this for huggingface_hub's own download).
_HUB_FILE_URL = "https://huggingface.co/{repo}/resolve/main/{file}"
_HUB_DEFAULT_FILE = "model.safetensors"


def _split(name: str) -> tuple[str, str, str | None]:
    """``"timm/resnet18.a1_in1k"`` -> ``("timm", "resnet18", "a1_in1k")``."""
    source, _, rest = name.partition("/")
    arch, _, tag = rest.partition(".")
    if not arch:
        raise UnknownModelError(f"{name!r} names no model after {source + '/'!r}")
    return source, arch, tag or None


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


def _check_arch(source: str, arch: str) -> None:
    if source == "timm":
        timm = importlib.import_module("timm")
        if not timm.is_model(arch):
            raise _unknown("timm", arch, timm.list_models())
    elif source == "torchvision":
        if arch not in _torchvision_names():
            raise _unknown("torchvision", arch, list(_torchvision_names()))
    else:
        raise UnknownModelError(f"{source!r} is not a bridged library; use timm/ or torchvision/")


# ------------------------------------------------------------------------------ weights


@dataclass(frozen=True)
class ExternalWeights:
    """Pretrained weights that timm or torchvision publishes, as the zoo fetches them.

    Attributes:
        arch: ``timm/<arch>`` or ``torchvision/<arch>``.
        tag: the library's name for the weights (``a1_in1k``, ``IMAGENET1K_V1``).
        file: what :func:`modelzoo.weights.fetch` downloads: the file name (also the
            name under ``MODELZOO_MIRROR`` and in ``MODELZOO_WEIGHTS_DIR``), the sha256
            or its published prefix ("" when the library publishes none), the URL.
        model_kwargs: builder arguments the weights need (e.g. ``image_size`` for
            torchvision's 384-pixel ViT weights); the caller's arguments win.
        metrics: as the library publishes them (dataset -> metric -> value).
        license: as the library states it, or "" when it states none.
        description: the library's pointer to how the weights were made.
    """

    arch: str
    tag: str
    file: Any  # modelzoo.weights.WeightFile (imported lazily)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    license: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        """``<arch>.<tag>``, the name ``create`` takes."""
        return f"{self.arch}.{self.tag}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (the facts a fine-tuned model's card records)."""
        return {
            "name": self.name,
            "files": [self.file.to_dict()],
            "model_kwargs": dict(self.model_kwargs),
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "license": self.license,
            "description": self.description,
        }


def _weight_file(name: str | None, url: str, sha256: str) -> Any:
    """The card file of library weights; ``name`` None: the URL's file name."""
    from modelzoo.utils.io import UnsafeNameError, safe_file_name, url_file_name
    from modelzoo.weights import WeightFile

    try:
        safe = url_file_name(url) if name is None else safe_file_name(name)
    except UnsafeNameError as err:
        raise WeightsError(f"weights at {url} have no usable file name: {err}") from err
    return WeightFile(name=safe, size=0, sha256=sha256, urls=(url,))


def _torchvision_tags(arch: str) -> Any:
    """The ``WeightsEnum`` of a torchvision architecture, or None when it has none."""
    models = importlib.import_module("torchvision.models")
    try:
        return models.get_model_weights(arch)
    except (ValueError, KeyError):
        return None


def _torchvision_weights(arch: str, choice: Any) -> ExternalWeights:
    """``choice``: True (the default weights), a tag, or a ``WeightsEnum`` member."""
    label = f"torchvision/{arch}"
    if _is_weights_enum_member(choice):
        # Any member, also of a user's own WeightsEnum (url + hash + meta): whether the
        # tensors fit is the loader's check, which names every mismatch.
        member = choice
    else:
        enum = _torchvision_tags(arch)
        if enum is None:
            raise WeightsError(
                f"torchvision publishes no weights for {label}; build it with pretrained=False "
                "or pass your own weights file as pretrained='path/to/file'"
            )
        try:
            member = enum.DEFAULT if choice is True else enum[str(choice)]
        except KeyError:
            raise _unknown_tag(label, str(choice), [m.name for m in enum]) from None
    url = member.url
    file = _weight_file(None, url, "")
    match = _HASH_IN_NAME.search(file.name)
    meta = dict(member.meta)
    kwargs: dict[str, Any] = {}
    min_size = meta.get("min_size")
    if arch.startswith("vit_") and min_size and min_size[0] != 224:
        kwargs["image_size"] = int(min_size[0])  # torchvision's builder sets this for SWAG
    if arch in ("inception_v3", "googlenet"):
        kwargs["transform_input"] = True  # as torchvision's builder does with weights
    return ExternalWeights(
        arch=label,
        tag=member.name,
        file=dataclasses.replace(file, sha256=match.group(1) if match else ""),
        model_kwargs=kwargs,
        metrics={k: dict(v) for k, v in (meta.get("_metrics") or {}).items()},
        license="",
        description=str(meta.get("recipe", "")),
    )


def _is_weights_enum_member(value: Any) -> bool:
    try:
        from torchvision.models import WeightsEnum
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return False
    return isinstance(value, WeightsEnum)


def _timm_tags(arch: str) -> list[str]:
    timm = importlib.import_module("timm")
    return [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*")]


def _timm_weights(arch: str, choice: Any) -> ExternalWeights:
    """``choice``: True (timm's default tag for ``arch``) or a tag."""
    from timm.models import get_pretrained_cfg

    label = f"timm/{arch}"
    tags = _timm_tags(arch)
    if not tags:
        raise WeightsError(
            f"timm publishes no weights for {label}; build it with pretrained=False or pass "
            "your own weights file as pretrained='path/to/file'"
        )
    tag = get_pretrained_cfg(arch).tag if choice is True else str(choice)
    if tag not in tags:
        raise _unknown_tag(label, tag, tags)
    cfg = get_pretrained_cfg(f"{arch}.{tag}")
    if cfg.hf_hub_id:
        remote = cfg.hf_hub_filename or _HUB_DEFAULT_FILE
        url = _HUB_FILE_URL.format(repo=cfg.hf_hub_id, file=remote)
        sha256 = ""  # the Hub's files carry no published digest
    elif cfg.url and not cfg.custom_load:
        remote = cfg.url.rsplit("/", 1)[-1]
        match = _HASH_IN_NAME.search(remote)
        url, sha256 = cfg.url, match.group(1) if match else ""
    else:
        raise WeightsError(
            f"timm loads {label}.{tag} with its own code (from {cfg.url or cfg.hf_hub_id}), "
            "which the zoo does not run; load it with timm.create_model(..., pretrained=True) "
            "and pass the module to modelzoo, or pass a converted file as pretrained=..."
        )
    suffix = os.path.splitext(remote)[1] or ".safetensors"
    return ExternalWeights(
        arch=label,
        tag=tag,
        # One file name per weight set, so MODELZOO_MIRROR and MODELZOO_WEIGHTS_DIR can hold
        # them side by side (every Hub repo calls its file model.safetensors).
        file=_weight_file(f"timm-{arch}.{tag}{suffix}", url, sha256),
        metrics={},
        license=str(cfg.license or ""),
        description=str(cfg.origin_url or cfg.paper_ids or ""),
    )


def _unknown_tag(label: str, tag: str, tags: list[str]) -> WeightsError:
    close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return WeightsError(
        f"{label} has no pretrained weights tagged {tag!r}.{hint} The library publishes: "
        f"{', '.join(tags)} (create('{label}.<tag>') or pretrained='<tag>'). To load your own "
        "weights pass a file or URL as pretrained=..."
    )


def _looks_like_tag(text: str) -> bool:
    """A bare word, not a path or URL: what a user means as a weight tag."""
    return not ("/" in text or "\\" in text or "." in text or ":" in text or os.path.exists(text))


def resolve_external_weights(name: str, pretrained: Any = None) -> ExternalWeights | None:
    """The library weights that ``name`` and ``pretrained`` select, the one rule for both bridges.

    Args:
        name: ``timm/<arch>[.<tag>]`` or ``torchvision/<arch>[.<tag>]``.
        pretrained: None or False (only a tag in ``name`` selects weights), True (the
            library's default weights), a tag, a torchvision ``WeightsEnum`` member, or a
            file, directory or URL (not library weights: None is returned).

    Returns:
        The weights, or None when nothing or a file/URL is selected.

    Raises:
        UnknownModelError: no such architecture.
        WeightsError: an unknown tag (the message lists the library's tags) or an
            architecture without published weights.
        ConfigError: ``name`` holds one tag and ``pretrained`` names another.
    """
    source, arch, tag = _split(name)
    _check_arch(source, arch)
    if tag is not None:
        if pretrained not in (None, False, True, tag):
            raise ConfigError(
                f"{name!r} names the weights {tag!r} but pretrained={pretrained!r} names "
                "others; pass one of them"
            )
        choice: Any = tag
    elif pretrained is None or pretrained is False:
        return None
    elif pretrained is True or _is_weights_enum_member(pretrained):
        choice = pretrained
    elif isinstance(pretrained, str) and _looks_like_tag(pretrained):
        choice = pretrained
    else:
        return None  # a file, directory or URL: the zoo's loader resolves it
    if source == "timm":
        if _is_weights_enum_member(choice):
            raise ConfigError(f"{name}: a torchvision WeightsEnum member is not a timm tag")
        return _timm_weights(arch, choice)
    return _torchvision_weights(arch, choice)


def _fetch(weights: ExternalWeights) -> Any:
    """The verified local file of library weights (``modelzoo.weights.fetch``)."""
    from modelzoo.weights import fetch

    try:
        return fetch(weights.file)
    except (IntegrityError, OfflineError):
        raise
    except WeightsError as err:
        if weights.file.sha256:
            raise
        raise WeightsError(
            f"{weights.name}: {weights.arch.partition('/')[0]} publishes no sha256 for these "
            "weights, so a download cannot be verified. Set MODELZOO_ALLOW_UNVERIFIED=1 to "
            "download them anyway (the digest is then recorded and checked on later loads), "
            f"or download {weights.file.urls[0]} yourself and pass pretrained='path/to/file'. "
            f"({err})"
        ) from err


# ------------------------------------------------------------------------------ building


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
    _check_arch("torchvision", arch)
    models = importlib.import_module("torchvision.models")
    in_chans = kwargs.pop("in_chans", None)
    if "drop_rate" in kwargs:
        kwargs["dropout"] = kwargs.pop("drop_rate")
    task = _torchvision_names()[arch]
    if kwargs.get("weights_backbone") is not None:
        raise ConfigError(
            f"torchvision/{arch}: weights_backbone={kwargs['weights_backbone']!r} would download "
            "through torchvision's hub, which modelzoo does not use; build the model, then load "
            "backbone weights with modelzoo.transfer.load_pretrained (a file or URL)"
        )
    if task in ("detection", "segmentation"):
        kwargs["weights_backbone"] = None
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


def _create_timm(arch: str, tag: str | None, kwargs: dict[str, Any]) -> nn.Module:
    _check_arch("timm", arch)
    timm = importlib.import_module("timm")
    # With a tag, timm attaches that tag's pretrained_cfg (input size, mean, std, labels).
    full = f"{arch}.{tag}" if tag else arch
    try:
        return timm.create_model(full, pretrained=False, **kwargs)
    except TypeError as err:
        raise ConfigError(
            f"timm/{arch} does not take the arguments {sorted(kwargs)}: {err}"
        ) from err


def _pop_weights_alias(source: str, name: str, pretrained: Any, kwargs: dict[str, Any]) -> Any:
    """torchvision spells ``pretrained`` as ``weights``: accept it as an alias."""
    if "weights" not in kwargs:
        return pretrained
    weights = kwargs.pop("weights")
    if source != "torchvision":
        raise ConfigError(f"{name}: 'weights' is torchvision's keyword; use pretrained=...")
    if pretrained not in (False, None) and pretrained != weights:
        raise ConfigError(
            f"{name}: weights={weights!r} and pretrained={pretrained!r} both choose weights; "
            "pass one of them (weights= is an alias of pretrained=)"
        )
    return weights


def create_external(
    name: str,
    *,
    pretrained: Any = False,
    strict: bool = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a timm or torchvision model with the zoo's keyword conventions.

    Args:
        name: ``timm/<arch>[.<tag>]`` or ``torchvision/<arch>[.<tag>]``; a tag loads the
            library's weights of that name.
        pretrained: see the module docstring (False, True, a tag, a file, a URL).
        strict: refuse any difference between the weights and the model.
        features_only: return an :class:`ExternalFeatures` (a list of feature maps).
        out_indices: with ``features_only``, the levels to return (default: all).
        **kwargs: builder arguments (``num_classes``, ``in_chans``, ``drop_rate``, and the
            library's own); ``weights=`` is torchvision's alias of ``pretrained=``.

    Raises:
        UnknownModelError: no such model.
        ConfigError: an argument the builder does not take, or conflicting weights.
        WeightsError: unknown tag, weights that cannot be fetched or do not fit
            (``OfflineError``, ``IntegrityError`` as ``fetch`` raises them).
    """
    source, arch, tag = _split(name)
    pretrained = _pop_weights_alias(source, name, pretrained, kwargs)
    weights = resolve_external_weights(name, pretrained)
    if weights is not None:
        kwargs = {**weights.model_kwargs, **kwargs}
    init_kwargs = dict(kwargs)  # the builders below consume their copy
    if source == "timm":
        model = _create_timm(arch, weights.tag if weights else None, kwargs)
    else:
        model = _create_torchvision(arch, kwargs)
    model.model_name = f"{source}/{arch}"
    model.init_kwargs = init_kwargs
    if weights is not None or (pretrained not in (None, False, True)):
        from modelzoo.transfer import load_pretrained

        if weights is not None:
            path = _fetch(weights)
            report = load_pretrained(model, path, strict=strict)
            model.load_report = dataclasses.replace(report, source=weights.name)
        else:
            model.load_report = load_pretrained(model, pretrained, strict=strict)
    if features_only:
        return _features(model, source, arch, init_kwargs, out_indices)
    if out_indices is not None:
        raise ConfigError("out_indices only applies with features_only=True")
    return model


# ------------------------------------------------------------------------------ features


class ExternalFeatures(nn.Module):
    """A bridged model as a feature extractor: ``forward`` returns a list of feature maps.

    The interface is that of the zoo's own ``FeatureListNet``: ``feature_info`` (one
    dict per returned level: ``num_chs``, ``reduction``, ``module``), ``channels()``,
    ``reductions()``, ``out_indices`` (levels of the full list, ascending). The wrapped
    network is ``self.model``, so parameter names carry a ``model.`` prefix, as the
    native wrapper's do.
    """

    def __init__(
        self,
        model: nn.Module,
        feature_info: list[dict[str, Any]],
        out_indices: list[int],
        model_name: str,
    ) -> None:
        super().__init__()
        self.model = model
        self.feature_info = feature_info
        self.out_indices = out_indices
        self.model_name = model_name

    def channels(self) -> list[int]:
        """The channels of each returned map."""
        return [f["num_chs"] for f in self.feature_info]

    def reductions(self) -> list[int]:
        """The stride of each returned map relative to the input."""
        return [f["reduction"] for f in self.feature_info]


class _TimmFeatures(ExternalFeatures):
    """timm's ``forward_intermediates``, which every timm model has (what timm's own
    ``features_only`` uses for its newer families), with the unused head and tail pruned."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(
            self.model.forward_intermediates(x, indices=self.out_indices, intermediates_only=True)
        )


class _TorchvisionFeatures(ExternalFeatures):
    """torchvision's ``create_feature_extractor``: the traced graph up to the last level."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.model(x)
        return [out[str(i)] for i in self.out_indices]


def _features(
    model: nn.Module,
    source: str,
    arch: str,
    kwargs: dict[str, Any],
    out_indices: Sequence[int] | None,
) -> ExternalFeatures:
    from modelzoo.layers.features import resolve_out_indices

    label = f"{source}/{arch}"
    if source == "timm":
        info = list(getattr(model, "feature_info", None) or [])
        if not info or not callable(getattr(model, "forward_intermediates", None)):
            raise ConfigError(
                f"{label} has no feature_info/forward_intermediates, so features_only=True "
                "cannot apply; use model.forward_features(x)"
            )
        indices = resolve_out_indices(out_indices, len(info), label)
        prune = getattr(model, "prune_intermediate_layers", None)
        if callable(prune):
            prune(indices, prune_norm=True, prune_head=True)  # no work after the last level
        levels = [
            {
                "num_chs": info[i]["num_chs"],
                "reduction": info[i]["reduction"],
                "module": info[i]["module"],
            }
            for i in indices
        ]
        wrapper: ExternalFeatures = _TimmFeatures(model, levels, indices, label)
    else:
        if _torchvision_names()[arch] != "image_classification":
            raise ConfigError(
                f"features_only=True applies to classifiers; {label} is a "
                f"{_torchvision_names()[arch]} model"
            )
        info = _torchvision_levels(model, arch, kwargs)
        if not info:
            raise ConfigError(
                f"found no feature maps (NCHW outputs below the input size) in {label}, so "
                "features_only=True cannot apply; use the model's own forward"
            )
        indices = resolve_out_indices(out_indices, len(info), label)
        from torchvision.models.feature_extraction import create_feature_extractor

        nodes = {info[i]["module"]: str(i) for i in indices}
        try:
            extractor = create_feature_extractor(model, return_nodes=nodes)
        except Exception as err:  # torch.fx cannot trace every model
            raise ConfigError(
                f"torchvision's create_feature_extractor cannot trace {label} ({err}); "
                "features_only=True is not available for it"
            ) from err
        wrapper = _TorchvisionFeatures(extractor, [dict(info[i]) for i in indices], indices, label)
    report = getattr(model, "load_report", None)
    if report is not None:
        wrapper.load_report = report
    return wrapper


def _probe_size(arch: str, kwargs: dict[str, Any]) -> int:
    size = kwargs.get("image_size")
    if isinstance(size, int):
        return size
    return 299 if arch == "inception_v3" else 224


def _torchvision_levels(model: nn.Module, arch: str, kwargs: dict[str, Any]) -> list[dict]:
    """The feature levels of a torchvision classifier, found by watching one forward pass.

    One level per stride: among the modules whose output is a square NCHW map at that
    stride (global pooling excluded), the outermost ones, and of those the last to
    finish, so a level is the output of a whole stage (``layer1``, ``features.3``)
    rather than a layer inside the block that starts the next one. The pass runs on the
    meta device (no memory, no time) when the architecture builds there.
    """
    size = _probe_size(arch, kwargs)
    in_chans = int(kwargs.get("in_chans", 3))
    try:
        with torch.device("meta"):
            probe = _create_torchvision(arch, dict(kwargs))
        device = torch.device("meta")
    except Exception:  # some builders compute on tensors (regnet): watch the real model
        probe = model
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    outputs: list[tuple[str, tuple[int, ...]]] = []
    calls: dict[str, int] = {}
    handles = []
    for name, module in probe.named_modules():
        if not name:
            continue

        def hook(_m: nn.Module, _i: object, out: object, name: str = name) -> None:
            calls[name] = calls.get(name, 0) + 1
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                outputs.append((name, tuple(out.shape)))

        handles.append(module.register_forward_hook(hook))
    was_training = probe.training
    try:
        probe.eval()
        with torch.no_grad():
            probe(torch.zeros(1, in_chans, size, size, device=device))
    finally:
        probe.train(was_training)
        for handle in handles:
            handle.remove()
    by_stride: dict[int, tuple[int, int, str, int]] = {}  # stride -> (depth, order, name, chs)
    for order, (name, shape) in enumerate(outputs):
        _, chs, height, width = shape
        if height != width or height <= 1 or height >= size or calls[name] != 1:
            continue
        stride = 2 ** round(math.log2(size / height))
        depth = name.count(".")
        best = by_stride.get(stride)
        if best is None or depth < best[0] or (depth == best[0] and order > best[1]):
            by_stride[stride] = (depth, order, name, chs)
    return [
        {"num_chs": chs, "reduction": stride, "module": name}
        for stride, (_, _, name, chs) in sorted(by_stride.items())
    ]


# ------------------------------------------------------------------------------ listing


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
    source, arch, _ = _split(name)
    with torch.device("meta"):
        model = create_external(f"{source}/{arch}")
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
    source, arch, _ = _split(name)
    if source == "timm":
        return "image_classification"
    _check_arch("torchvision", arch)
    return _torchvision_names()[arch]
