"""Weight cards: typed, JSON-serializable facts about one set of pretrained weights.

A :class:`WeightSet` says which architecture the weights fit (``arch`` and the
builder kwargs they were trained with), where the files are (name, size,
sha256, URLs, or a path under the repository's ``weights/`` folder), what they
score, under which license, and how the inputs must be prepared.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from modelzoo.errors import WeightsError

__all__ = ["WeightFile", "WeightSet", "SOURCE_FORMATS"]

SOURCE_FORMATS = ("safetensors", "pytorch")
_HEX = re.compile(r"[0-9a-f]*")


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
        if not self.name or "/" in self.name or "\\" in self.name:
            raise WeightsError(f"a weight file name must be a bare file name, got {self.name!r}")
        digest = self.sha256.lower()
        if not _HEX.fullmatch(digest) or len(digest) > 64 or 0 < len(digest) < 8:
            raise WeightsError(
                f"{self.name}: sha256 must be 64 hex digits, a published prefix of at least 8, "
                f"or '' when unknown; got {self.sha256!r}"
            )
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "urls", tuple(self.urls))

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
        _check_keys(cls, data, "weight file")
        return cls(
            name=data["name"],
            size=int(data.get("size") or 0),
            sha256=data.get("sha256") or "",
            urls=tuple(data.get("urls") or ()),
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
        if not self.arch or "." in self.arch or "/" in self.arch:
            raise WeightsError(f"a weight set's arch must be a model name, got {self.arch!r}")
        if not self.tag or "." in self.tag or "/" in self.tag:
            raise WeightsError(
                f"{self.arch}: a weight tag may not be empty or hold '.' or '/', got {self.tag!r}"
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
        _check_keys(cls, data, "weight set")
        kwargs = dict(data)
        kwargs["files"] = tuple(WeightFile.from_dict(f) for f in data["files"])
        return cls(**kwargs)


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
