"""``save_pretrained`` / ``from_pretrained``: a model as a folder that rebuilds it.

The folder uses the Hugging Face hub-mixin layout: ``config.json`` (the model's
registered name and builder arguments) and ``model.safetensors``, so a local
folder and a Hub repo are interchangeable.

A folder may come from anywhere, so ``config.json`` is read as untrusted: its
``model_name`` must be a registered (or timm/torchvision) model name without a
weight tag, its builder arguments may not name files, URLs or weights to fetch,
and layer types (``__type__``) must be torch or modelzoo ``nn.Module`` classes.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError, WeightsError
from modelzoo.utils.io import atomic_write, atomic_write_text

__all__ = ["save_pretrained", "from_pretrained", "CONFIG_NAME", "WEIGHTS_NAME"]

_logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_CONFIG_FORMAT = 1


_TYPE_MODULES = ("torch.", "modelzoo.")
_TYPE_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")
_EXTERNAL_NAME = re.compile(r"(timm|torchvision)/[A-Za-z0-9][A-Za-z0-9_\-]*")
# Arguments of create() and of the bridged libraries that load weights or read files: a
# config.json must not be able to make from_pretrained fetch or open anything by itself.
_RESERVED_KWARGS = frozenset({"pretrained", "features_only", "out_indices", "strict"})
_PATH_LIKE_KWARG = re.compile(
    r"^(pretrained|checkpoint|weights|cache|hf_hub|url|file|model_dir)|(_path|_file|_url|_dir)$"
)


def _encode(value: Any, key: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, key) for v in value]}
    if isinstance(value, list):
        return [_encode(v, key) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, type) and issubclass(value, nn.Module):
        path = f"{value.__module__}.{value.__qualname__}"
        if path.startswith(_TYPE_MODULES):
            return {"__type__": path}
    raise ConfigError(
        f"save_pretrained: the builder argument {key}={value!r} cannot be written to "
        f"{CONFIG_NAME}; pass config={{...}} with JSON values (e.g. act_layer='gelu')"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if set(value) == {"__type__"}:
            return _import_layer_type(value["__type__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _import_layer_type(path: str) -> type[nn.Module]:
    # Only public torch and modelzoo classes, by dotted name: config.json may come from anywhere.
    if (
        not isinstance(path, str)
        or not path.startswith(_TYPE_MODULES)
        or not _TYPE_PATH.fullmatch(path)
    ):
        raise WeightsError(
            f"{CONFIG_NAME} names a layer type {path!r}; only public torch/modelzoo nn.Module "
            "classes given by their dotted name (e.g. 'torch.nn.modules.activation.GELU') are "
            "accepted"
        )
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            break
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            return obj
        break
    raise WeightsError(f"{CONFIG_NAME} names layer type {path!r}, which is not an nn.Module class")


def save_pretrained(
    model: nn.Module, directory: str | Path, *, config: Mapping[str, Any] | None = None
) -> Path:
    """Write ``config.json`` and ``model.safetensors``, from which ``from_pretrained`` rebuilds.

    Args:
        model: a model made by ``modelzoo.create`` (or a ``features_only`` wrapper of one).
        directory: created if needed; existing files of the same names are replaced.
        config: the builder arguments to record; default ``model.init_kwargs``
            (recorded by ``create``), with ``num_classes`` updated after a
            ``reset_classifier``.

    Returns:
        The directory.

    Both files are serialized in memory first and then written with
    :func:`~modelzoo.utils.io.atomic_write`, the weights before the config (a
    folder without ``config.json`` is not one ``from_pretrained`` reads), so a
    failure never leaves a half-written file, and a folder this call created
    is removed again.
    """
    from safetensors.torch import save

    features = _is_feature_wrapper(model)
    inner = model.model if features else model
    name = getattr(model, "model_name", None) or getattr(inner, "model_name", None)
    if not name:
        raise ConfigError(
            "save_pretrained needs a model made by modelzoo.create() (it records the model "
            "name); set model.model_name = '<registered name>' and pass config={...}"
        )
    if config is None and not hasattr(inner, "init_kwargs"):
        _logger.warning(
            "save_pretrained: %s records no builder arguments (init_kwargs); pass config={...} "
            "(e.g. num_classes, in_chans) unless it was built with the defaults",
            name,
        )
    kwargs = dict(getattr(inner, "init_kwargs", {}) if config is None else config)
    num_classes = getattr(inner, "num_classes", None)
    if config is None and callable(getattr(inner, "get_classifier", None)):
        if isinstance(num_classes, int) and not isinstance(num_classes, bool):
            kwargs["num_classes"] = num_classes  # reset_classifier() may have changed it
    payload: dict[str, Any] = {
        "model_name": name,
        "model_kwargs": {k: _encode(v, k) for k, v in kwargs.items()},
        "format_version": _CONFIG_FORMAT,
    }
    if features:
        payload["features_only"] = True
        payload["out_indices"] = list(model.out_indices)

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a directory")
    # Tied weights are stored once; load_pretrained restores the other names from the tie.
    weights = save(_untied_state(inner), metadata={"format": "pt"})
    config = json.dumps(payload, indent=2) + "\n"
    created = not directory.exists()
    try:
        atomic_write(directory / WEIGHTS_NAME, weights)
        atomic_write_text(directory / CONFIG_NAME, config)
    except BaseException:
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    _logger.info("saved %s to %s", name, directory)
    return directory


def _untied_state(model: nn.Module) -> dict[str, Any]:
    """The state dict with each shared tensor once, contiguous, under its first name."""
    state: dict[str, Any] = {}
    seen: set[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = set()
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach()
        if tensor.device.type == "meta":
            raise ConfigError(f"save_pretrained: {key} is on the meta device and holds no values")
        view = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if tensor.numel() and view in seen:
            continue  # the same tensor under another name (tied weights)
        seen.add(view)
        tensor = tensor.to("cpu")
        state[key] = tensor if tensor.is_contiguous() else tensor.contiguous()
    # Partly overlapping views (not the same tensor) are stored as copies.
    return _separate_storages(state)


def _separate_storages(state: dict[str, Any]) -> dict[str, Any]:
    """Copies of tensors that still share storage: safetensors refuses shared memory."""
    owners: set[int] = set()
    out = {}
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        if tensor.numel() and ptr in owners:
            tensor = tensor.clone()
        owners.add(tensor.untyped_storage().data_ptr())
        out[key] = tensor
    return out


def from_pretrained(
    directory: str | Path, *, strict: bool | None = None, **overrides: Any
) -> nn.Module:
    """Rebuild a model written by :func:`save_pretrained`.

    Args:
        directory: the directory holding ``config.json`` and ``model.safetensors``.
        strict: refuse any difference between file and model; default: strict
            unless ``overrides`` change the model.
        **overrides: builder arguments that replace the recorded ones, e.g.
            ``num_classes=5`` (the head is re-initialized) or ``in_chans=1``
            (the first convolution is adapted).

    Returns:
        The model, with ``load_report`` set.
    """
    import modelzoo

    directory = Path(directory)
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise WeightsError(
            f"{directory} has no {CONFIG_NAME}, so it was not written by save_pretrained; to load "
            f"weights into a model you build, use modelzoo.create(name, pretrained='{directory}')"
        )
    try:
        payload = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise WeightsError(f"{config_path} is not valid JSON: {err}") from err
    name, raw_kwargs, out_indices = _checked_config(payload, config_path)
    kwargs = _decode(raw_kwargs)
    kwargs.update(overrides)
    from modelzoo.transfer import load_pretrained

    if payload.get("features_only") is True and "features_only" not in overrides:
        # The wrapper is rebuilt the way create() builds it (the bridges have their own);
        # the saved weights are the wrapped model's, which load under its "model." prefix.
        kwargs.update(features_only=True, out_indices=out_indices)
    model = modelzoo.create(name, **kwargs)
    strict = not overrides if strict is None else strict
    model.load_report = load_pretrained(model, directory, strict=strict)
    return model


def _is_feature_wrapper(model: nn.Module) -> bool:
    """A ``features_only`` model: the zoo's FeatureListNet or a bridge's extractor."""
    return isinstance(getattr(model, "model", None), nn.Module) and callable(
        getattr(model, "channels", None)
    )


def _checked_config(payload: Any, path: Path) -> tuple[str, dict[str, Any], list[int] | None]:
    """The model name, builder arguments and feature indices of a config.json, checked.

    A config.json may come from anywhere: it may name a model and its builder
    arguments, and nothing else; none of it may make a path or a download.

    Raises:
        WeightsError: the config is not a mapping, names no registered model (or
            names a weight tag), or its arguments name files, URLs or weights.
    """
    if not isinstance(payload, dict):
        raise WeightsError(f"{path} must hold a JSON object, got {type(payload).__name__}")
    name = payload.get("model_name")
    if not isinstance(name, str) or not _known_model_name(name):
        raise WeightsError(
            f"{path}: model_name must be a registered model name such as 'resnet20' (or "
            f"'timm/<name>', 'torchvision/<name>') without a weight tag; got {name!r}. "
            "See `modelzoo list`."
        )
    kwargs = payload.get("model_kwargs", {})
    if not isinstance(kwargs, dict):
        raise WeightsError(f"{path}: model_kwargs must be a JSON object, got {kwargs!r}")
    _check_config_value(kwargs, path, "model_kwargs")
    if "features_only" in payload and not isinstance(payload["features_only"], bool):
        raise WeightsError(f"{path}: features_only must be true or false")
    out_indices = payload.get("out_indices")
    if out_indices is not None and (
        not isinstance(out_indices, list)
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices)
    ):
        raise WeightsError(f"{path}: out_indices must be a list of integers, got {out_indices!r}")
    return name, kwargs, out_indices


def _known_model_name(name: str) -> bool:
    from modelzoo.registry import is_model, split_name

    if _EXTERNAL_NAME.fullmatch(name):
        return True  # the bridge checks that the library has it
    return split_name(name)[1] is None and is_model(name)


def _check_config_value(value: Any, path: Path, where: str) -> None:
    """Refuse arguments that could make from_pretrained open a file or fetch weights."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("__type__", "__tuple__") and len(value) == 1:
                _check_config_value(inner, path, f"{where}.{key}")
                continue
            if not isinstance(key, str) or key in _RESERVED_KWARGS or _PATH_LIKE_KWARG.search(key):
                raise WeightsError(
                    f"{path}: {where}.{key} is not accepted in a config.json: it could make "
                    f"the model load weights or read a file. Pass it yourself, e.g. "
                    f"from_pretrained(directory, {key}=...), if you mean it"
                )
            _check_config_value(inner, path, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _check_config_value(inner, path, f"{where}[{i}]")
    elif isinstance(value, str) and where.endswith("__type__"):
        return  # checked by _import_layer_type when decoded
    elif isinstance(value, str):
        looks_like_path = (
            "\\" in value
            or "://" in value
            or value.startswith(("~", "/"))
            or ("/" in value and not _EXTERNAL_NAME.fullmatch(value))
            or "\x00" in value
        )
        if looks_like_path:
            raise WeightsError(
                f"{path}: {where}={value!r} looks like a path or URL, which a config.json may "
                "not hold (a builder argument names a model or a setting, never a file). Pass "
                "it yourself to from_pretrained(directory, ...) if you mean it"
            )
