"""What a fine-tune starts from: :func:`resolve_source` turns a name into a :class:`Source`.

One function reads every form a user may pass, once, before anything is built:

- ``arch``: a fresh model (or ``pretrained=`` says which weights);
- ``arch.tag``: the zoo's weight set (``modelzoo.registry.resolve_weight_set``);
- ``timm/<arch>[.<tag>]``, ``torchvision/<arch>[.<tag>]``: the libraries' weights
  (``modelzoo.models.external.resolve_external_weights``);
- a Hugging Face Hub repo, ``hf-hub:<org>/<repo>[@<revision>]`` (pinned to the commit
  its files come from);
- a directory written by ``save_pretrained`` (``config.json``) — e.g. the ``model/``
  folder of an earlier fine-tune — or a run directory (``config.yaml`` and
  ``checkpoints/``), whose best checkpoint (else last) is loaded;
- with an ``arch`` name, ``pretrained=`` a tag, ``True``, a file, a directory or a URL.

The :class:`Source` it returns holds the architecture, the name ``create`` and the
recipe take, the weights and the facts a card records about them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelzoo.errors import ConfigError

__all__ = ["Source", "resolve_source", "HUB_PREFIX"]

HUB_PREFIX = "hf-hub:"  # Hugging Face Hub ids: modelzoo.weights.hub


@dataclass(frozen=True)
class Source:
    """A fine-tune's starting point: an architecture and the weights to load into it.

    Attributes:
        arch: the architecture (``resnet20``, ``timm/resnet18``), without a weight tag.
        name: what ``create`` and the recipe's ``model.name`` take: ``arch.tag`` for
            published weights (so ``modelzoo train RUN/config.yaml`` starts from the same
            weights), else ``arch``.
        pretrained: weights ``name`` does not say: a file, directory or URL, else False.
        model_kwargs: builder arguments the weights were made with (``create`` applies
            them for a tag; recorded here for the card and for callers).
        weights: the published weights (a ``WeightSet``, or ``ExternalWeights`` for
            timm/torchvision), or None.
        label: how cards and messages name the weights (``resnet20.digits_0to4``, a path),
            or None for a fresh model.
        facts: what the fine-tuned model's card records about the weights (files with
            sha256, metrics, license), or None for a fresh model.
        recipe: the recipe the weights were trained with, when known: fine-tuning on the
            same dataset inherits its preprocessing (``img_size``, ``flatten``...).
        input_spec: how the weights expect inputs (``img_size``, ``in_chans``...).
        saved_model: ``pretrained`` is a ``save_pretrained`` directory, which rebuilds the
            architecture with the arguments in its ``config.json``.
    """

    arch: str
    name: str
    pretrained: bool | str = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    weights: Any = None
    label: str | None = None
    facts: dict[str, Any] | None = None
    recipe: Mapping[str, Any] | None = None
    input_spec: Mapping[str, Any] | None = None
    saved_model: bool = False

    @property
    def fresh(self) -> bool:
        """Whether the model starts from a random initialization."""
        return self.label is None

    @property
    def license(self) -> str | None:
        """The weights' license, when their publisher states one."""
        return (self.facts or {}).get("license") or None


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://", "file://"))


def _looks_like_tag(text: str) -> bool:
    """A bare word (not a path, file name or URL): what a user means as a weight tag."""
    return not any(c in text for c in "/\\.:") and not os.path.exists(text)


def _weight_set_facts(ws: Any) -> dict[str, Any]:
    return {
        "name": ws.name,
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in ws.files],
        "metrics": ws.metrics,
        "license": ws.license,
        "description": ws.description,
    }


def resolve_source(name: str | os.PathLike[str], pretrained: bool | str | None = None) -> Source:
    """Resolve a model name, weight set, library name or folder to a :class:`Source`, once.

    Args:
        name: ``arch``, ``arch.tag``, ``timm/<arch>[.<tag>]``, ``torchvision/<arch>[.<tag>]``,
            ``hf-hub:<org>/<repo>[@<revision>]``, a ``save_pretrained`` directory, or a run
            directory.
        pretrained: for a name without a tag: None or False (fresh; a tag in ``name``
            still loads its weights), True (the default weights), a tag, a file, a
            directory or a URL.

    Returns:
        The source; nothing is built or downloaded yet (except a Hub repo's model files,
        whose config.json says the architecture).

    Raises:
        UnknownModelError: no such architecture (close matches named).
        WeightsError: no such weight set (the existing ones named).
        ConfigError: ``name`` and ``pretrained`` name different weights, or ``name`` is a
            weights file or URL (which does not say its architecture).
    """
    text = os.fspath(name)
    if text.startswith(HUB_PREFIX):
        return _from_hub(text, pretrained)
    if text.startswith(("timm/", "torchvision/")):
        return _external(text, pretrained)
    from modelzoo.registry import is_model

    path = Path(text).expanduser()
    if is_model(text) and not ("/" in text or os.sep in text):
        return _native(text, pretrained)  # a registered name wins over a folder of that name
    if _is_url(text) or path.is_file():
        raise ConfigError(
            f"{text!r} is a weights file, which does not say its architecture; pass the "
            f"architecture and the weights: finetune('<arch>', pretrained={text!r})"
        )
    if path.is_dir():
        if pretrained not in (None, False):
            raise ConfigError(
                f"{path} holds its own weights; pretrained={pretrained!r} would name others"
            )
        return _from_directory(path)
    if "/" in text or os.sep in text:
        raise ConfigError(
            f"no folder at {path}: pass a model name (modelzoo list), arch.tag, a "
            "save_pretrained folder or a run directory"
        )
    return _native(text, pretrained)  # raises, naming close matches


def _native(text: str, pretrained: bool | str | None) -> Source:
    from modelzoo.registry import accepted_kwargs, resolve_weight_set, split_name

    arch, tag = split_name(text)
    accepted_kwargs(arch)  # raises UnknownModelError naming close matches
    if tag is not None:
        if pretrained not in (None, True, tag):
            raise ConfigError(
                f"{text!r} names the weight set {tag!r} but pretrained={pretrained!r} says "
                "otherwise; pass one of them"
            )
        choice: bool | str | None = tag
    else:
        choice = pretrained
    ws = resolve_weight_set(arch, choice)
    if ws is None and isinstance(choice, str) and (tag is not None or _looks_like_tag(choice)):
        from modelzoo.weights import get_weight_set

        get_weight_set(arch, choice)  # no such set: raises, naming the ones there are
    if ws is not None:
        return Source(
            arch=arch,
            name=ws.name,
            model_kwargs=dict(ws.model_kwargs),
            weights=ws,
            label=ws.name,
            facts=_weight_set_facts(ws),
            recipe=ws.recipe if isinstance(ws.recipe, Mapping) else None,
            input_spec=dict(ws.input_spec),
        )
    if isinstance(choice, str):  # a file, directory or URL
        return Source(arch=arch, name=arch, pretrained=choice, label=choice, facts={"name": choice})
    return Source(arch=arch, name=arch)


def _external(text: str, pretrained: bool | str | None) -> Source:
    from modelzoo.models.external import resolve_external_weights
    from modelzoo.registry import split_name

    arch, tag = split_name(text)
    if tag is not None and pretrained is False:  # as for native names: no silent "fresh"
        raise ConfigError(
            f"{text!r} names the weights {tag!r} but pretrained=False says none; pass one of them"
        )
    ext = resolve_external_weights(text, pretrained)
    if ext is not None:
        return Source(
            arch=arch,
            name=ext.name,
            model_kwargs=dict(ext.model_kwargs),
            weights=ext,
            label=ext.name,
            facts=ext.to_dict(),
        )
    if isinstance(pretrained, str):
        return Source(
            arch=arch,
            name=arch,
            pretrained=pretrained,
            label=pretrained,
            facts={"name": pretrained},
        )
    return Source(arch=arch, name=arch)


def _from_hub(text: str, pretrained: bool | str | None) -> Source:
    """A Hub repo (``hf-hub:org/repo[@rev]``), pinned to the commit its files came from."""
    if pretrained not in (None, False, True):
        raise ConfigError(
            f"{text!r} holds its own weights; pretrained={pretrained!r} would name others"
        )
    from modelzoo.weights.hub import describe_hub_model

    found = describe_hub_model(text)
    return Source(
        arch=found.arch,
        name=found.arch,
        pretrained=found.hub_id,  # from_pretrained and create() read the same commit again
        label=found.hub_id,
        facts=found.facts,
        recipe=found.recipe,
        input_spec=found.input_spec,
        saved_model=True,
    )


def _from_directory(path: Path) -> Source:
    """A ``save_pretrained`` folder, or a run directory and its best (else last) checkpoint."""
    from modelzoo.registry import split_name

    config_json = path / "config.json"
    if config_json.is_file():
        try:
            arch = json.loads(config_json.read_text())["model_name"]
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"{config_json} is not a save_pretrained config: {err}") from err
        if not isinstance(arch, str):
            raise ConfigError(f"{config_json}: model_name must be a string, got {arch!r}")
        card = _read_json(path / "model_card.json")  # a fine-tune's own card, when present
        return Source(
            arch=split_name(arch)[0],
            name=split_name(arch)[0],
            pretrained=str(path),
            label=str(path),
            facts={"name": str(path)},
            recipe=card.get("recipe"),
            input_spec=card.get("input_spec"),
            saved_model=True,
        )
    if (path / "config.yaml").is_file():
        from modelzoo.config import load_recipe

        checkpoints = path / "checkpoints"
        found = [checkpoints / n for n in ("best.ckpt", "last.ckpt") if (checkpoints / n).is_file()]
        if not found:
            raise ConfigError(
                f"{path} is a run directory without checkpoints/best.ckpt or last.ckpt; "
                "train it first, or pass the architecture and pretrained='<checkpoint>'"
            )
        recipe = load_recipe(path / "config.yaml").to_dict()
        model = dict(recipe["model"])
        arch = split_name(str(model.pop("name")))[0]
        model.pop("pretrained", None)  # the checkpoint replaces whatever the run started from
        return Source(
            arch=arch,
            name=arch,
            pretrained=str(found[0]),
            model_kwargs=model,
            label=str(found[0]),
            facts={"name": str(found[0])},
            recipe=recipe,
        )
    raise ConfigError(
        f"{path} holds neither config.json (a save_pretrained folder) nor config.yaml and "
        "checkpoints/ (a run directory); pass a model name, arch.tag, or one of those folders"
    )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
