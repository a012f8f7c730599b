"""``save_pretrained`` / ``from_pretrained``: a model as a folder that rebuilds it.

The folder uses the Hugging Face hub-mixin layout: ``config.json`` (the model's
registered name and builder arguments) and ``model.safetensors``, so a local
folder and a Hub repo are interchangeable.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError, WeightsError

__all__ = ["save_pretrained", "from_pretrained", "CONFIG_NAME", "WEIGHTS_NAME"]

_logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_CONFIG_FORMAT = 1


_TYPE_MODULES = ("torch.", "modelzoo.")


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
    # Only torch and modelzoo classes: config.json may come from anywhere.
    if not isinstance(path, str) or not path.startswith(_TYPE_MODULES):
        raise WeightsError(f"{CONFIG_NAME} names a layer type outside torch/modelzoo: {path!r}")
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


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


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

    The files are written to a temporary directory beside the target and then
    renamed into place, so a failure never leaves a half-written file.
    """
    from safetensors.torch import save_model

    from modelzoo.layers.features import FeatureListNet

    inner = model.model if isinstance(model, FeatureListNet) else model
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
    if isinstance(model, FeatureListNet):
        payload["features_only"] = True
        payload["out_indices"] = list(model.out_indices)

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} exists and is not a directory")
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        # save_model drops the duplicate names of tied weights, which load_pretrained restores.
        save_model(inner, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"}, force_contiguous=True)
        _fsync_write(tmp / CONFIG_NAME, (json.dumps(payload, indent=2) + "\n").encode())
        if not directory.exists():
            try:
                os.rename(tmp, directory)
            except OSError:  # someone created it meanwhile: replace file by file below
                pass
        if tmp.exists():
            for file in (WEIGHTS_NAME, CONFIG_NAME):
                os.replace(tmp / file, directory / file)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _logger.info("saved %s to %s", name, directory)
    return directory


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
        payload = json.loads(config_path.read_text())
        name = payload["model_name"]
        kwargs = _decode(payload.get("model_kwargs", {}))
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{config_path} is not a valid modelzoo config: {err}") from err
    kwargs.update(overrides)
    from modelzoo.transfer import load_pretrained

    model = modelzoo.create(name, **kwargs)
    strict = not overrides if strict is None else strict
    model.load_report = load_pretrained(model, directory, strict=strict)
    if payload.get("features_only") and not overrides.get("features_only"):
        from modelzoo.layers.features import FeatureListNet

        model = FeatureListNet(model, payload.get("out_indices"))
    return model
