"""The data a fine-tune trains on: a dataset name, an image folder, a CSV file or a bundle."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from modelzoo.errors import ConfigError

__all__ = ["resolve_data", "parse_key_values", "data_label", "PREPROCESSING_KEYS"]

# Data options that describe how inputs look rather than which samples are used: the
# recipe of the weights supplies them when the same dataset is fine-tuned on.
PREPROCESSING_KEYS = ("img_size", "flatten", "seq_len", "vocab", "in_chans")


def parse_key_values(items: Sequence[str], what: str = "--data-arg") -> dict[str, Any]:
    """``["classes=[5,6,7]", "img_size=16"]`` -> ``{"classes": [5, 6, 7], "img_size": 16}``.

    Values are read as YAML scalars or lists, so ``1e-3`` is a float and ``true`` a bool.
    """
    from modelzoo.config import parse_scalar

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} {item!r} must look like key=value, e.g. train_per_class=10")
        out[key.strip()] = parse_scalar(text)
    return out


def resolve_data(
    data: Any,
    data_kwargs: Mapping[str, Any] | None = None,
    *,
    source: Any = None,
    batch_size: int | None = None,
) -> tuple[str, dict[str, Any], Any]:
    """Build the data a fine-tune trains on.

    Args:
        data: a registered dataset name, an image folder (``root/<class>/<image>``),
            a CSV file, or a ``DataBundle``.
        data_kwargs: the dataset's options (e.g. ``classes``, ``train_per_class``).
        source: what is fine-tuned (a :class:`~modelzoo.finetune.Source`, or anything
            with ``recipe`` and ``input_spec``, such as a ``WeightSet``): fine-tuning on
            the dataset its weights were trained on inherits their preprocessing
            (``img_size``, ``flatten``, ...), and an image folder their image size and
            channels.
        batch_size: the trainer's batch size, for datasets laid out for one (text streams).

    Returns:
        The dataset name, the options it was built with, and the ``DataBundle``.
    """
    from modelzoo.data import DataBundle, build_data, list_datasets
    from modelzoo.data.registry import dataset_factory, dataset_kwargs

    kwargs = dict(data_kwargs or {})
    if isinstance(data, DataBundle):
        return "custom", kwargs, data
    if not isinstance(data, (str, os.PathLike)):
        raise ConfigError(
            f"data must be a dataset name, an image folder, a CSV file or a DataBundle; got "
            f"{type(data).__name__}"
        )
    text = os.fspath(data)
    spec = dict(getattr(source, "input_spec", None) or {})
    recipe = getattr(source, "recipe", None)
    recipe_data = dict(recipe.get("data", {})) if isinstance(recipe, Mapping) else {}
    path = Path(text).expanduser()
    if text in list_datasets():
        name = text
        if recipe_data.get("name") == name:
            for key in PREPROCESSING_KEYS:
                if key in recipe_data and key not in kwargs:
                    kwargs[key] = recipe_data[key]
    elif path.is_dir():
        name = "image_folder"
        kwargs.setdefault("root", str(path))
        weights_name = getattr(source, "name", None)
        if "img_size" in spec or "size" in spec:
            # Prepare the images as the weights' card says they were (its transforms); the
            # user's img_size / in_chans / augment options still override.
            kwargs.setdefault("weights", weights_name)
        kwargs.setdefault("test_fraction", 0.2)
    elif path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
        name = "csv"
        kwargs.setdefault("path", str(path))
        if path.suffix.lower() == ".tsv":
            kwargs.setdefault("delimiter", "\t")
    else:
        if path.suffix or os.sep in text:
            raise ConfigError(
                f"data={text!r} is not an image folder or a CSV file (no such "
                f"{'file' if path.suffix else 'folder'}); pass a dataset name "
                f"({', '.join(list_datasets())}), a folder root/<class>/<image>, or a .csv file"
            )
        dataset_factory(text)  # raises, naming the datasets that exist
        name = text
    if batch_size is not None and "batch_size" in dataset_kwargs(name):
        kwargs.setdefault("batch_size", batch_size)
    bundle = build_data(name, **kwargs)
    return name, kwargs, bundle


def data_label(name: str, kwargs: Mapping[str, Any]) -> str:
    """``digits``, ``digits[5,6,7,8,9]``, ``image_folder(<root>)``, ``csv(<file>)``."""
    if name == "image_folder":
        return f"image_folder({kwargs.get('root')})"
    if name == "csv":
        return f"csv({Path(str(kwargs.get('path'))).name})"
    classes = kwargs.get("classes")
    if isinstance(classes, (list, tuple)) and classes:
        return f"{name}[{','.join(str(c) for c in classes)}]"
    return name
