"""Weight cards: typed, JSON-serializable facts about one set of pretrained weights.

A :class:`WeightSet` says which architecture the weights fit (``arch`` and the
builder kwargs they were trained with), where the files are (name, size,
sha256, URLs, or a path under the repository's ``weights/`` folder), what they
score, under which license, and how the inputs must be prepared.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelzoo.errors import WeightsError
from modelzoo.utils.io import UnsafeNameError, safe_file_name

__all__ = ["WeightFile", "WeightSet", "SOURCE_FORMATS", "LABEL_SETS", "class_names"]

SOURCE_FORMATS = ("safetensors", "pytorch")
_HEX = re.compile(r"[0-9a-f]*")
# Architecture names and tags become parts of file names (``<arch>.<tag>.safetensors``).
_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
_URL_SCHEMES = ("http", "https", "file")

# Class-name lists that many cards share, stored once as package data (one name a line) and
# named by a card's ``input_spec["labels"]`` instead of being repeated in every card.
LABEL_SETS = {
    # ImageNet-1k in the order of the classifier's outputs: torchvision's ``meta["categories"]``.
    "imagenet-1k": "imagenet_classes.txt",
}


@functools.cache
def _label_set(name: str) -> tuple[str, ...]:
    text = importlib.resources.files(__package__).joinpath(LABEL_SETS[name]).read_text("utf-8")
    return tuple(line for line in text.splitlines() if line)


def class_names(labels: str | Sequence[Any] | None) -> tuple[str, ...] | None:
    """The class names a card's ``input_spec["labels"]`` stands for.

    Args:
        labels: the name of a shared list (a key of :data:`LABEL_SETS`, e.g.
            ``"imagenet-1k"``), the names themselves, or None.

    Returns:
        The names in the order of the model's outputs, or None when the card has none.

    Raises:
        WeightsError: ``labels`` names no known list, or is neither a name nor a list.
    """
    if labels is None:
        return None
    if isinstance(labels, str):
        if labels not in LABEL_SETS:
            raise WeightsError(
                f"a card's labels {labels!r} name no known class list; use one of "
                f"{', '.join(sorted(LABEL_SETS))} or list the class names themselves"
            )
        return _label_set(labels)
    if isinstance(labels, Sequence):
        return tuple(str(label) for label in labels)
    raise WeightsError(
        f"a card's labels must be a list of class names or the name of a shared list "
        f"({', '.join(sorted(LABEL_SETS))}); got {type(labels).__name__}"
    )


@dataclass(frozen=True)
class WeightFile:
    """One file of a weight set.

    Attributes:
        name: the local file name; also the name looked up in ``MODELZOO_WEIGHTS_DIR``
            and appended to ``MODELZOO_MIRROR`` base URLs, so it is unique across cards.
        size: the size in bytes; 0 when unknown (published without it).
        sha256: the full hex digest, or the published prefix of it (at least 8 hex
            digits, e.g. torchvision's ``resnet18-f37072fd.pth``: only that prefix is
            checked), or "" when nothing was published (see ``fetch`` for the rules).
        urls: where to download it from, tried in order after the mirrors.
        path: for shipped files, the repository path (``weights/<file>``).
    """

    name: str
    size: int
    sha256: str
    urls: tuple[str, ...] = ()
    path: str | None = None

    def __post_init__(self) -> None:
        try:
            safe_file_name(self.name)
        except UnsafeNameError as err:
            raise WeightsError(
                f"a weight file name must be a bare file name such as 'model.safetensors': {err}"
            ) from None
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise WeightsError(
                f"{self.name}: size must be a byte count >= 0 (0: unknown), got {self.size!r}"
            )
        if not isinstance(self.sha256, str):
            raise WeightsError(f"{self.name}: sha256 must be a string, got {self.sha256!r}")
        digest = self.sha256.lower()
        if not _HEX.fullmatch(digest) or len(digest) > 64 or 0 < len(digest) < 8:
            raise WeightsError(
                f"{self.name}: sha256 must be 64 hex digits, a published prefix of at least 8, "
                f"or '' when unknown; got {self.sha256!r}"
            )
        object.__setattr__(self, "sha256", digest)
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        for url in urls:
            scheme = urllib.parse.urlsplit(url).scheme.lower() if isinstance(url, str) else ""
            if scheme not in _URL_SCHEMES:
                raise WeightsError(
                    f"{self.name}: each URL must be an http(s):// or file:// URL, got {url!r}"
                )
        object.__setattr__(self, "urls", urls)
        if self.path is not None:
            try:
                if not isinstance(self.path, str) or not self.path.startswith("weights/"):
                    raise UnsafeNameError("it does not start with 'weights/'")
                safe_file_name(self.path[len("weights/") :])
            except UnsafeNameError as err:
                raise WeightsError(
                    f"{self.name}: path must be 'weights/<file name>' (a shipped file), got "
                    f"{self.path!r} ({err})"
                ) from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the file."""
        return {
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
            "urls": list(self.urls),
            "path": self.path,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeightFile:
        """The file that :meth:`to_dict` wrote."""
        if not isinstance(data, dict):
            raise WeightsError(f"a weight file must be a JSON object, got {data!r}")
        _check_keys(cls, data, "weight file")
        urls = data.get("urls") or ()
        if not isinstance(urls, (list, tuple)):
            raise WeightsError(f"weight file {data['name']!r}: urls must be a list, got {urls!r}")
        return cls(
            name=data["name"],
            size=data.get("size") or 0,
            sha256=data.get("sha256") or "",
            urls=tuple(urls),
            path=data.get("path"),
        )


@dataclass(frozen=True)
class WeightSet:
    """A set of pretrained weights for one architecture, and the facts about it.

    Attributes:
        arch: the registered model name the weights fit.
        tag: the weight set's name; ``create(f"{arch}.{tag}")`` loads it.
        files: the files (usually one; empty only while a card is being built,
            e.g. before :func:`add_shipped_weight_set` fills it in).
        model_kwargs: the builder kwargs the weights were trained with, e.g.
            ``{"num_classes": 10, "in_chans": 1}``.
        metrics: dataset -> metric -> value, as measured (or as published, for
            external weights; the card says which).
        license: the license of the weights.
        recipe: the recipe that produced them, or a description or URL.
        input_spec: how to prepare inputs: size, in_chans, mean, std,
            interpolation, labels.
        source_format: "safetensors", or "pytorch" for ``torch.save`` pickles
            (loaded with ``weights_only=True`` only).
        num_params: the parameter count of the model the weights fit.
        default: whether ``pretrained=True`` picks this set.
        description: one or two sentences for people.
    """

    arch: str
    tag: str
    files: tuple[WeightFile, ...]
    model_kwargs: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    license: str
    recipe: dict[str, Any] | str | None
    input_spec: dict[str, Any]
    source_format: str = "safetensors"
    num_params: int | None = None
    default: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not _NAME_PART.fullmatch(self.arch):
            raise WeightsError(
                f"a weight set's arch must be a model name (letters, digits, '_' and '-'), "
                f"got {self.arch!r}"
            )
        if not isinstance(self.tag, str) or not _NAME_PART.fullmatch(self.tag):
            raise WeightsError(
                f"{self.arch}: a weight tag must be letters, digits, '_' and '-' (no '.' or "
                f"'/'), got {self.tag!r}"
            )
        for field in ("model_kwargs", "metrics", "input_spec"):
            if not isinstance(getattr(self, field), dict):
                raise WeightsError(
                    f"{self.arch}.{self.tag}: {field} must be a mapping, got "
                    f"{type(getattr(self, field)).__name__}"
                )
        if self.source_format not in SOURCE_FORMATS:
            raise WeightsError(
                f"{self.name}: source_format must be one of {', '.join(SOURCE_FORMATS)}, "
                f"got {self.source_format!r}"
            )
        object.__setattr__(self, "files", tuple(self.files))

    @property
    def name(self) -> str:
        """``arch.tag``, the name ``create`` and ``modelzoo download`` take."""
        return f"{self.arch}.{self.tag}"

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The names of the classes, in the order of the outputs (None: not a classifier).

        Read from ``input_spec["labels"]``, which lists them or names a shared list
        (``"imagenet-1k"``: the 1000 ImageNet classes as torchvision names them).
        """
        return class_names(self.input_spec.get("labels"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the card."""
        return {
            "arch": self.arch,
            "tag": self.tag,
            "files": [f.to_dict() for f in self.files],
            "model_kwargs": dict(self.model_kwargs),
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "license": self.license,
            "recipe": self.recipe,
            "input_spec": dict(self.input_spec),
            "source_format": self.source_format,
            "num_params": self.num_params,
            "default": self.default,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WeightSet:
        """The card that :meth:`to_dict` wrote.

        Raises:
            WeightsError: a required key is missing or an unknown key is present.
        """
        if not isinstance(data, dict):
            raise WeightsError(f"a weight set must be a JSON object, got {type(data).__name__}")
        _check_keys(cls, data, "weight set")
        if not isinstance(data["files"], list):
            raise WeightsError(
                f"weight set {data.get('arch')}.{data.get('tag')}: files must be a list"
            )
        kwargs = dict(data)
        kwargs["files"] = tuple(WeightFile.from_dict(f) for f in data["files"])
        return cls(**kwargs)

    def describe(self) -> str:
        """A readable card: what ``modelzoo info arch.tag`` prints.

        Lists the tag and whether it is the default, what the weights are, the builder
        arguments they need, each file with its size and sha256 (the full digest when
        known; otherwise it says honestly what is published), the metrics, license,
        recipe and input preparation.
        """
        title = f"{self.name}" + (" (default)" if self.default else "")
        lines = [title]
        if self.description:
            lines.append(f"  {self.description}")
        lines.append(f"  architecture: {self.arch}; create('{self.name}') loads these weights")
        if self.model_kwargs:
            lines.append(f"  built with: {_kwargs_text(self.model_kwargs)}")
        if self.num_params is not None:
            lines.append(f"  parameters: {self.num_params:,}")
        lines.append(f"  format: {self.source_format}")
        lines.append("  files:")
        if not self.files:
            lines.append("    (none listed yet)")
        for wf in self.files:
            lines.extend(f"    {line}" for line in _file_lines(wf))
        lines.append("  metrics:" if self.metrics else "  metrics: none published")
        for dataset, values in self.metrics.items():
            shown = ", ".join(f"{k} {_number(v)}" for k, v in values.items())
            lines.append(f"    {dataset}: {shown}")
        lines.append(f"  license: {self.license or 'not stated'}")
        lines.append(f"  recipe: {_recipe_text(self.recipe)}")
        if self.input_spec:
            lines.append(f"  input: {_kwargs_text(self.input_spec)}")
        return "\n".join(lines)


def _check_keys(cls: type, data: dict[str, Any], what: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if what == "weight file":
        required = {"name"}  # size, sha256 may be absent for hand-written entries
    unknown = sorted(set(data) - set(fields))
    missing = sorted(required - set(data))
    if unknown or missing:
        label = data.get("name") or f"{data.get('arch', '?')}.{data.get('tag', '?')}"
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown {', '.join(unknown)}")
        raise WeightsError(
            f"{what} {label}: {'; '.join(problems)} (accepted keys: {', '.join(fields)})"
        )


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, (list, tuple)) and len(value) > 8:  # e.g. 1000 class labels
        head = json.dumps(list(value[:4]), separators=(",", ":"), default=str)[:-1]
        return f"{head},... {len(value)} in all]"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
    return str(value)


def _kwargs_text(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in mapping.items())


def _size_text(size: int) -> str:
    if not size:
        return "size not published"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            shown = f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            return f"{shown} ({size:,} bytes)"
        value /= 1024
    return f"{size:,} bytes"  # pragma: no cover - the loop always returns


def _hash_text(wf: WeightFile) -> str:
    if len(wf.sha256) == 64:
        return f"sha256 {wf.sha256}"
    if wf.sha256:
        hosts = {urllib.parse.urlsplit(u).hostname or "" for u in wf.urls}
        who = (
            f"torchvision publishes {len(wf.sha256)} hex digits"
            if "download.pytorch.org" in hosts
            else f"only the first {len(wf.sha256)} hex digits are published"
        )
        return f"sha256 prefix {wf.sha256} ({who}; only the prefix is checked)"
    return (
        "sha256 not published (downloading needs MODELZOO_ALLOW_UNVERIFIED=1; the digest "
        "received is then recorded and checked on later loads)"
    )


def _file_lines(wf: WeightFile) -> list[str]:
    lines = [f"{wf.name}: {_size_text(wf.size)}", f"  {_hash_text(wf)}"]
    if wf.path:
        lines.append(f"  shipped with modelzoo: {wf.path}")
    lines.extend(f"  from {url}" for url in wf.urls)
    return lines


def _recipe_text(recipe: dict[str, Any] | str | None) -> str:
    if not recipe:
        return "not recorded"
    if isinstance(recipe, str):
        return recipe
    parts = []
    for section in ("model", "data", "task"):
        value = recipe.get(section)
        if isinstance(value, dict) and value.get("name"):
            parts.append(f"{section} {value['name']}")
    train = recipe.get("train")
    if isinstance(train, dict):
        keys = ("epochs", "max_steps", "optimizer", "lr", "weight_decay", "scheduler", "seed")
        chosen = {k: train[k] for k in keys if train.get(k) is not None}
        if chosen:
            parts.append(f"train {_kwargs_text(chosen)}")
    if not parts:
        return _value_text(recipe)
    return "; ".join(parts) + " (the full recipe is in the card's to_dict()['recipe'])"
