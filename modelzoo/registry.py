"""The model registry: names to builders, and typed facts about each model.

A builder is a keyword-only, typed function that returns an ``nn.Module``::

    @register_model(family="resnet", task="image_classification", inputs=image_inputs)
    def resnet50(*, num_classes: int = 1000, in_chans: int = 3, **kwargs: Any) -> ResNet:
        ...

Built-in families are imported the first time the registry is queried, so that
``import modelzoo`` stays cheap; third-party packages register through the
``modelzoo.models`` entry-point group, loaded at the same moment.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import importlib
import inspect
import logging
import re
import threading
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, UnknownModelError
from modelzoo.layers.specs import TensorSpec
from modelzoo.utils.devices import model_device

__all__ = [
    "TensorSpec",
    "ModelCard",
    "register_model",
    "create",
    "list_models",
    "model_card",
    "example_inputs",
    "output_shape",
    "is_model",
    "family_and_task",
    "split_name",
    "accepted_kwargs",
    "check_kwargs",
    "resolve_weight_set",
    "natural_key",
    "EXTERNAL_PREFIXES",
]

_logger = logging.getLogger(__name__)

EXTERNAL_PREFIXES = ("timm/", "torchvision/")
HUB_PREFIX = "hf-hub:"  # Hugging Face Hub ids: modelzoo.weights.hub
ENTRY_POINT_GROUP = "modelzoo.models"

# Modules under modelzoo.models that register the built-in families. Adding a
# family means adding its module name here.
_BUILTIN_FAMILY_MODULES = (
    "mlp",
    "cnn",
    "resnet",
    "vit",
    "rnn",
    "transformer",
    "autoencoder",
    "gan",
    "image_translation",
    "rl",
    "detection",
    "segmentation",
    "audio",
)


InputsFn = Callable[[nn.Module], tuple[TensorSpec, ...]]
OutputShapeFn = Callable[[nn.Module, int], tuple[int, ...]]


@dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., nn.Module]
    family: str
    task: str
    inputs: InputsFn
    output_shape: OutputShapeFn | None
    paper: str
    accepted: frozenset[str] | None  # keyword names the builder takes; None: anything
    hints: dict[str, Any]  # keyword -> type hint, for the type checks in check_kwargs


@dataclass(frozen=True)
class ModelCard:
    """Typed facts about one registered model, built with its default arguments.

    Attributes:
        name: the registered name (``resnet50``, ``timm/efficientnet_b0``).
        family: ``resnet``, ``vit``, ``rnn``, ... (``external`` for the bridges).
        task: what it does (``image_classification``, ``seq2seq``, ...).
        defaults: the builder's keyword defaults.
        paper: the paper that introduced the architecture.
        num_params: parameters with the default arguments.
        input_spec: the positional inputs (see ``example_inputs``).
        output_shape: for batch size 1 with the default arguments, when the family states it.
        weights: the weight sets (``modelzoo.weights.WeightSet``) of the architecture.
        builder: where the model is defined, ``module:function`` (``modelzoo info`` prints it).
    """

    name: str
    family: str
    task: str
    defaults: dict[str, Any]
    paper: str
    num_params: int
    input_spec: tuple[TensorSpec, ...]
    output_shape: tuple[int, ...] | None
    weights: tuple[Any, ...] = ()
    builder: str = ""

    def example_inputs(
        self, batch_size: int = 2, *, seed: int = 0, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, ...]:
        """Valid positional inputs for ``model(*inputs)``, the same for the same seed."""
        generator = torch.Generator().manual_seed(seed)
        return tuple(spec.example(batch_size, generator, device) for spec in self.input_spec)

    def gflops(self) -> float | None:
        """GFLOPs of one eval forward of one sample (torchvision's ``_ops``, timm's GMACs x 2).

        Counted with ``torch.utils.flop_counter.FlopCounterMode`` on the card's example inputs
        at batch size 1 with the default arguments: two FLOPs per multiply-add of matrix
        products, convolutions and attention; elementwise work is not counted. Computed on
        demand, once per process (on the meta device where the forward allows it: no memory,
        no arithmetic), so building cards stays cheap.

        Returns:
            The GFLOPs, or None when the forward cannot be counted (the log says why).
        """
        return _forward_gflops(self.name)

    def file_size(self, tag: str | None = None) -> int | None:
        """Bytes of a weight set's files (torchvision's ``_file_size``, in bytes).

        Args:
            tag: the weight set; None: the default one (the first when none is marked).

        Returns:
            The size, or None when the model has no weight set or a file's size is not
            published.

        Raises:
            ConfigError: the model has no weight set ``tag`` (the message lists its tags).
        """
        if tag is None:
            ws = next((w for w in self.weights if w.default), None)
            ws = ws or (self.weights[0] if self.weights else None)
            if ws is None:
                return None
        else:
            ws = next((w for w in self.weights if w.tag == tag), None)
            if ws is None:
                tags = ", ".join(w.tag for w in self.weights) or "none"
                raise ConfigError(f"{self.name} has no weight set {tag!r}; its weight sets: {tags}")
        sizes = [f.size for f in ws.files]
        return sum(sizes) if sizes and all(sizes) else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the card."""
        return {
            "name": self.name,
            "family": self.family,
            "task": self.task,
            "builder": self.builder,
            "defaults": {k: _jsonable(v) for k, v in self.defaults.items()},
            "paper": self.paper,
            "num_params": self.num_params,
            "inputs": [spec.describe() for spec in self.input_spec],
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "weights": [_jsonable(w) for w in self.weights],
        }


_registry: dict[str, _Entry] = {}
_lock = threading.RLock()
_builtins_loaded = False


def _jsonable(value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return _jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, type):
        return value.__name__
    return repr(value)


def _classification_output(model: nn.Module, batch_size: int) -> tuple[int, ...]:
    return (batch_size, model.num_classes)


def _keyword_facts(
    builder: Callable[..., nn.Module],
) -> tuple[frozenset[str] | None, dict[str, Any]]:
    """The keyword names a builder accepts (None: any) and their type hints.

    A builder that forwards ``**kwargs`` is read through the class its return
    annotation names: that class's ``__init__`` says what the forwarded keywords are.
    """
    params = inspect.signature(builder).parameters
    names = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    try:
        hints = typing.get_type_hints(builder)
    except Exception:
        hints = {}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return frozenset(names), {k: v for k, v in hints.items() if k in names}
    cls = hints.get("return")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return None, {}
    init_params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in init_params.values()):
        return None, {}
    try:
        init_hints = typing.get_type_hints(cls.__init__)
    except Exception:
        init_hints = {}
    names |= {n for n in init_params if n != "self"}
    merged = {**init_hints, **hints}
    return frozenset(names), {k: v for k, v in merged.items() if k in names}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    family: str,
    task: str,
    inputs: InputsFn,
    output_shape: OutputShapeFn | None = None,
    paper: str = "",
    name: str | None = None,
    open_kwargs: bool = False,
) -> Any:
    """Register a model builder under its function name (or ``name``).

    Args:
        fn: the builder; keyword-only and typed.
        family: the family it belongs to (``"resnet"``, ``"rnn"``, ...).
        task: what it does (``"image_classification"``, ``"language_modeling"``, ...).
        inputs: returns the positional input specs of a built model.
        output_shape: returns the output shape for a batch size; classifiers
            get ``(batch, num_classes)`` by default.
        paper: the paper that introduced the architecture.
        name: the registered name, when it differs from the function's.
        open_kwargs: the builder takes keywords that cannot be listed (it forwards
            ``**kwargs`` somewhere open-ended); without it such a builder is refused,
            since misspelled keywords would then pass silently.

    Raises:
        ConfigError: a model of the same name is registered already, or the builder's
            keywords cannot be validated (see ``open_kwargs``).
    """

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        model_name = name or builder.__name__
        if "." in model_name or "/" in model_name:
            raise ConfigError(
                f"model name {model_name!r} may not contain '.' or '/': those separate "
                "weight tags and external sources. Rename the builder."
            )
        accepted, hints = _keyword_facts(builder)
        if accepted is None and not open_kwargs:
            raise ConfigError(
                f"cannot validate the keywords of {model_name!r}: "
                f"{builder.__module__}.{builder.__qualname__} takes **kwargs but its return "
                "annotation does not name an nn.Module class whose __init__ lists its "
                "arguments. Annotate the return type with that class, list the keywords, or "
                "register with open_kwargs=True."
            )
        shape_fn = output_shape
        if shape_fn is None and task.endswith("classification"):
            shape_fn = _classification_output
        entry = _Entry(model_name, builder, family, task, inputs, shape_fn, paper, accepted, hints)
        _load_builtins()  # a clash with a built-in name is found now, not at its first use
        with _lock:
            if model_name in _registry:
                old = _registry[model_name].builder
                raise ConfigError(
                    f"a model named {model_name!r} is registered already (by "
                    f"{old.__module__}.{old.__qualname__}); choose another name"
                )
            _registry[model_name] = entry
        return builder

    return decorate(fn) if fn is not None else decorate


def _load_builtins() -> None:
    """Import the built-in families and third-party entry points, once."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True  # set first: family modules call back into the registry
        for module in _BUILTIN_FAMILY_MODULES:
            importlib.import_module(f"modelzoo.models.{module}")
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                ep.load()
            except Exception:  # a broken plugin must not break the zoo
                _logger.exception("could not load modelzoo plugin %r", ep.value)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``resnet18`` before ``resnet101``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def split_name(name: str) -> tuple[str, str | None]:
    """``"resnet50.tv2_in1k"`` -> ``("resnet50", "tv2_in1k")``; ``"resnet50"`` -> (name, None).

    External names split the same way after their prefix: ``"timm/resnet18.a1_in1k"`` ->
    ``("timm/resnet18", "a1_in1k")``.
    """
    prefix = next((p for p in EXTERNAL_PREFIXES if name.startswith(p)), "")
    arch, _, tag = name[len(prefix) :].partition(".")
    return prefix + arch, tag or None


def _lookup(name: str) -> _Entry:
    _load_builtins()
    entry = _registry.get(name)
    if entry is None:
        matches = difflib.get_close_matches(name, list(_registry), n=5, cutoff=0.6)
        hint = f" Did you mean: {', '.join(matches)}?" if matches else ""
        raise UnknownModelError(
            f"no model named {name!r}.{hint} See modelzoo.list_models() or `modelzoo list` "
            "for every name; use 'timm/<name>' or 'torchvision/<name>' for external models."
        )
    return entry


def is_model(name: str) -> bool:
    """Whether ``name`` (without a weight tag) is a registered native model."""
    _load_builtins()
    return split_name(name)[0] in _registry


def family_and_task(name: str) -> tuple[str, str]:
    """A model's family and task without building it (``external`` for the bridges)."""
    if name.startswith(EXTERNAL_PREFIXES):
        from modelzoo.models import external

        return "external", external.external_task(split_name(name)[0])
    entry = _lookup(split_name(name)[0])
    return entry.family, entry.task


def accepted_kwargs(name: str) -> frozenset[str] | None:
    """The keyword arguments the builder of ``name`` (``arch`` or ``arch.tag``) accepts.

    Raises:
        UnknownModelError: no such model.
    """
    return _lookup(split_name(name)[0]).accepted


# Ranges of the keywords that mean the same in every family (README: keyword conventions).
# (lowest allowed, highest allowed or None, whether the highest is excluded).
_KEYWORD_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "num_classes": (0, None, False),  # 0: no head (features), as in timm
    "in_chans": (1, None, False),
    "in_features": (1, None, False),
    "img_size": (1, None, False),
    "drop_rate": (0.0, 1.0, True),
    "drop_path_rate": (0.0, 1.0, True),
    "attn_drop_rate": (0.0, 1.0, True),
    "proj_drop_rate": (0.0, 1.0, True),
    "pos_drop_rate": (0.0, 1.0, True),
    "vocab_size": (1, None, False),
    "d_model": (1, None, False),
    "num_layers": (1, None, False),
    "num_heads": (1, None, False),
    "max_len": (1, None, False),
    "obs_dim": (1, None, False),
    "action_dim": (1, None, False),
    "latent_dim": (1, None, False),
    "hidden_size": (1, None, False),
}


def _type_problem(value: Any, hint: Any) -> str | None:
    """What is wrong with ``value`` for a simple type hint (None when fine or not simple)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        problems = [_type_problem(value, arg) for arg in options]
        if any(p is None for p in problems):
            return None
        simple = [a for a in options if a in (int, float, bool, str, type(None))]
        if len(simple) != len(options):
            return None  # a union with richer types: leave it to the builder
        return "expected " + " or ".join(_TYPE_WORDS[a] for a in simple)
    if hint is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "expected an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "expected a number"
    if hint is str:
        return None if isinstance(value, str) else "expected a string"
    if hint is type(None):
        return None if value is None else "expected None"
    return None


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true/false", str: "a string"}
_TYPE_WORDS[type(None)] = "None"


def check_kwargs(name: str, kwargs: Mapping[str, Any]) -> None:
    """Check builder arguments for ``name`` without building: names, simple types, ranges.

    Raises:
        ConfigError: an unknown keyword (naming close matches and the accepted ones), a
            value of the wrong type (``num_classes="ten"``) or out of range
            (``num_classes=-1``); the message names the value, what is expected and the fix.
    """
    entry = _lookup(split_name(name)[0])
    accepted = entry.accepted
    for key, value in kwargs.items():
        if accepted is not None and key not in accepted:
            close = difflib.get_close_matches(key, accepted, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"{entry.name}() got an unknown keyword argument {key!r}.{hint} "
                f"Accepted: {', '.join(sorted(accepted))}."
            )
        problem = _type_problem(value, entry.hints[key]) if key in entry.hints else None
        if problem:
            default = (entry.builder.__kwdefaults__ or {}).get(key)
            example = f" (the default is {key}={default!r})" if default is not None else ""
            raise ConfigError(
                f"{entry.name}({key}={value!r}): {problem}, got {type(value).__name__}{example}."
            )
        bounds = _KEYWORD_RANGES.get(key)
        if bounds is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high, open_high = bounds
            if value < low or (high is not None and (value >= high if open_high else value > high)):
                upper = "" if high is None else f" and {'<' if open_high else '<='} {high}"
                raise ConfigError(f"{entry.name}({key}={value!r}): {key} must be >= {low}{upper}.")


def resolve_weight_set(arch: str, pretrained: bool | str | None) -> Any:
    """The weight set that ``pretrained`` names for a native ``arch`` (True: the default one).

    Returns:
        The ``WeightSet``, or None when ``pretrained`` is False/None or names a path, URL or
        Hub id rather than a tag.

    Raises:
        WeightsError: ``pretrained=True`` for an architecture without weight sets.
    """
    if pretrained is False or pretrained is None:
        return None
    from modelzoo.weights import get_weight_set, is_tag

    if pretrained is True:
        return get_weight_set(arch)
    if isinstance(pretrained, str) and is_tag(arch, pretrained):
        return get_weight_set(arch, pretrained)
    return None


def create(
    name: str,
    *,
    pretrained: bool | str = False,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    strict: bool = False,
    **kwargs: Any,
) -> nn.Module:
    """Build a model by name.

    Args:
        name: ``arch``, ``arch.tag`` (a weight set; implies pretrained),
            ``timm/<name>``, ``torchvision/<name>``, or a Hugging Face Hub repo
            ``hf-hub:<org>/<repo>[@<revision>]`` (its config.json names the architecture).
        pretrained: False, True (the default weight set), a tag, a local file
            or directory, a URL, or a Hub repo ``hf-hub:<org>/<repo>[@<revision>]``.
        features_only: return a feature extractor that outputs the feature
            maps listed in the model's ``feature_info``.
        out_indices: which ``feature_info`` entries to return (default: all).
        strict: with pretrained weights, refuse any key that is missing, unexpected or
            of another shape instead of re-initializing or adapting it.
        **kwargs: builder arguments; those whose value is None are dropped.

    Raises:
        UnknownModelError: no model of that name; the message lists close matches.
        ConfigError: an unknown keyword argument, a value of the wrong type or range,
            or a bad ``out_indices``.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if name.startswith(HUB_PREFIX) or (
        isinstance(pretrained, str) and pretrained.startswith(HUB_PREFIX)
    ):
        from modelzoo.weights.hub import create_from_hub  # through huggingface_hub

        return create_from_hub(
            name,
            pretrained=pretrained,
            features_only=features_only,
            out_indices=out_indices,
            strict=strict,
            **kwargs,
        )
    if name.startswith(EXTERNAL_PREFIXES):
        from modelzoo.models import external

        # The bridges extract features their libraries' own way (timm's forward_intermediates,
        # torchvision's create_feature_extractor), behind the same interface.
        return external.create_external(
            name,
            pretrained=pretrained,
            strict=strict,
            features_only=features_only,
            out_indices=out_indices,
            **kwargs,
        )
    else:
        arch, tag = split_name(name)
        _lookup(arch)
        if tag:
            if pretrained not in (False, True, tag):
                raise ConfigError(
                    f"{name!r} names weight set {tag!r} but pretrained={pretrained!r} names "
                    "another; pass one of them"
                )
            pretrained = tag
        weight_set = resolve_weight_set(arch, pretrained)
        if weight_set is not None:
            # Build the architecture the weights were trained with, then the caller's changes
            # (e.g. num_classes, in_chans), which the loader adapts to.
            kwargs = {**weight_set.model_kwargs, **kwargs}
        check_kwargs(arch, kwargs)
        model = _lookup(arch).builder(**kwargs)
        model.model_name = arch  # lets example_inputs() and the weights code find the card
        model.init_kwargs = dict(kwargs)  # what save_pretrained() records to rebuild it
        if pretrained:
            from modelzoo.transfer import load_pretrained

            source = weight_set if weight_set is not None else pretrained
            model.load_report = load_pretrained(model, source, strict=strict)
            if weight_set is not None:  # how inputs were prepared, as timm models carry it
                from modelzoo.transforms import pretrained_cfg

                model.pretrained_cfg = pretrained_cfg(weight_set)
    if features_only:
        from modelzoo.layers.features import FeatureListNet

        model = FeatureListNet(model, out_indices)
    elif out_indices is not None:
        raise ConfigError("out_indices only applies with features_only=True")
    return model


def _weight_sets(arch: str) -> list[Any]:
    from modelzoo.weights import weight_sets

    return weight_sets(arch)


def list_models(
    pattern: str | Iterable[str] = "*",
    *,
    family: str | None = None,
    task: str | None = None,
    pretrained: bool = False,
    include_external: bool = False,
) -> list[str]:
    """Registered model names matching fnmatch ``pattern``(s), in natural order.

    Args:
        pattern: one pattern or several (a name matching any is listed).
        family: keep only this family.
        task: keep only this task.
        pretrained: list weight sets (``arch.tag``) instead of architectures.
        include_external: add ``timm/...`` and ``torchvision/...`` names.
    """
    _load_builtins()
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names: list[str] = []
    for entry in _registry.values():
        if family is not None and entry.family != family:
            continue
        if task is not None and entry.task != task:
            continue
        if pretrained:
            names.extend(f"{entry.name}.{w.tag}" for w in _weight_sets(entry.name))
        else:
            names.append(entry.name)
    if include_external and not pretrained:
        from modelzoo.models import external

        names.extend(external.list_external(family=family, task=task))
    names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    return sorted(set(names), key=natural_key)


def model_card(name: str) -> ModelCard:
    """Typed facts about a model, built on the meta device (no memory, no time)."""
    if name.startswith(EXTERNAL_PREFIXES):
        return _external_card(split_name(name)[0])
    arch = split_name(name)[0]
    # Weight sets can be added while the process runs (a training script shipping one).
    return dataclasses.replace(_card(arch), weights=tuple(_weight_sets(arch)))


@functools.cache
def _card(arch: str) -> ModelCard:
    entry = _lookup(arch)
    with torch.device("meta"):
        model = entry.builder()
    output_shape = entry.output_shape(model, 1) if entry.output_shape else None
    return ModelCard(
        name=entry.name,
        family=entry.family,
        task=entry.task,
        defaults=_defaults(entry.builder),
        paper=entry.paper,
        num_params=sum(p.numel() for p in model.parameters()),
        input_spec=tuple(entry.inputs(model)),
        output_shape=output_shape,
        builder=f"{entry.builder.__module__}:{entry.builder.__qualname__}",
    )


@functools.cache
def _external_card(name: str) -> ModelCard:
    from modelzoo.models import external

    facts = external.describe_external(name)
    return ModelCard(
        name=name,
        family="external",
        task=facts.task,
        defaults={},
        paper="",
        num_params=facts.num_params,
        input_spec=(TensorSpec(facts.input_size, name="images"),),
        output_shape=(1, facts.num_classes) if facts.num_classes is not None else None,
        builder=facts.builder,
    )


@functools.cache
def _forward_gflops(name: str) -> float | None:
    """Forward GFLOPs of one sample of ``create(name)`` (see ``ModelCard.gflops``)."""
    from modelzoo.benchmark import forward_flops

    card = model_card(name)
    try:
        # Shapes are all FlopCounterMode reads: on the meta device nothing is computed.
        with torch.device("meta"):
            model = create(name)
        return forward_flops(model, card.example_inputs(1, device="meta")) / 1e9
    except Exception as err:  # data-dependent code (e.g. .item()) cannot run on meta
        _logger.debug("counting %s on the meta device failed (%s); counting on the CPU", name, err)
    try:
        torch.manual_seed(0)
        return forward_flops(create(name), card.example_inputs(1)) / 1e9
    except Exception:
        _logger.warning("cannot count the FLOPs of %s", name, exc_info=True)
        return None


def _defaults(builder: Callable[..., nn.Module]) -> dict[str, Any]:
    params = inspect.signature(builder).parameters
    return {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}


def example_inputs(
    model: nn.Module, batch_size: int = 2, *, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Valid inputs for a model made by ``create``, honouring its overrides (e.g. in_chans)."""
    name = getattr(model, "model_name", None)
    if name is None:
        raise ConfigError(
            "example_inputs() needs a model made by modelzoo.create(); for another module "
            "use model_card(name).example_inputs()"
        )
    entry = _lookup(name)
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    return tuple(spec.example(batch_size, generator, device) for spec in entry.inputs(model))


def output_shape(model: nn.Module, batch_size: int) -> tuple[int, ...] | None:
    """The documented output shape of a model made by ``create``, if its family states one."""
    entry = _lookup(model.model_name)
    return entry.output_shape(model, batch_size) if entry.output_shape else None
