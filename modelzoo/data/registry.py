"""Datasets by name: ``build_data("digits", val_fraction=0.1)`` returns a :class:`DataBundle`.

Besides datasets registered one by one, a *family* answers every name under a prefix:
``build_data("torchvision/CIFAR10")`` asks the ``torchvision`` family (see
:func:`register_dataset_family`) for the factory of ``CIFAR10``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch.utils.data import Dataset

from modelzoo.errors import ConfigError

__all__ = [
    "DataBundle",
    "register_dataset",
    "register_dataset_family",
    "build_data",
    "list_datasets",
    "dataset_factory",
    "dataset_kwargs",
    "recipe_of",
]

# The attribute build_data sets on each split, so that a Trainer given only the split
# (``trainer.fit(data.train)``) can still write the recipe that rebuilds it.
_RECIPE_ATTR = "modelzoo_data_recipe"


@dataclass
class DataBundle:
    """The splits of a dataset and the facts a model needs to match it.

    ``info`` holds what recipes pass on to models and tasks, e.g. ``num_classes``,
    ``in_chans``, ``img_size``, ``vocab_size``, ``pad_id``.
    """

    train: Dataset
    val: Dataset | None = None
    test: Dataset | None = None
    info: dict[str, Any] = field(default_factory=dict)
    collate_fn: Callable | None = None
    name: str | None = None  # the registered name build_data made it from
    kwargs: dict[str, Any] = field(default_factory=dict)  # and the keywords it was given

    @property
    def recipe(self) -> dict[str, Any] | None:
        """The recipe ``data`` section that rebuilds this bundle (None when not built by name)."""
        return {"name": self.name, **self.kwargs} if self.name is not None else None


_DATASETS: dict[str, Callable[..., DataBundle]] = {}


def register_dataset(name: str) -> Callable[[Callable[..., DataBundle]], Callable[..., DataBundle]]:
    """Register a factory ``fn(**kwargs) -> DataBundle`` under ``name``."""

    def decorate(fn: Callable[..., DataBundle]) -> Callable[..., DataBundle]:
        if name in _DATASETS:
            raise ConfigError(f"a dataset named {name!r} is registered already")
        _DATASETS[name] = fn
        return fn

    return decorate


@dataclass(frozen=True)
class _Family:
    resolve: Callable[[str], Callable[..., DataBundle]]
    names: Callable[[], Iterable[str]]


_FAMILIES: dict[str, _Family] = {}


def register_dataset_family(
    prefix: str,
    resolve: Callable[[str], Callable[..., DataBundle]],
    names: Callable[[], Iterable[str]],
) -> None:
    """Answer every dataset name ``<prefix>/<member>`` with ``resolve(member)``.

    Args:
        prefix: the part before the ``/`` (e.g. ``"torchvision"``).
        resolve: the factory of a member, whose signature states its keywords as a
            registered factory's does; raises ConfigError (naming close matches) for a
            member that does not exist. The member comes from outside (a recipe, the
            command line): ``resolve`` must check it before using it.
        names: the members :func:`list_datasets` shows (looked up only when it is called).
    """
    if not prefix or "/" in prefix or prefix in _DATASETS:
        raise ConfigError(f"a dataset family needs a prefix without '/'; got {prefix!r}")
    if prefix in _FAMILIES:
        raise ConfigError(f"a dataset family with the prefix {prefix!r} is registered already")
    _FAMILIES[prefix] = _Family(resolve, names)


def _load() -> None:
    import modelzoo.data  # noqa: F401  (its imports register the built-in datasets)


def list_datasets() -> list[str]:
    """Every registered name, and the names of each family's members (``torchvision/MNIST``)."""
    _load()
    members = [f"{p}/{n}" for p, family in _FAMILIES.items() for n in family.names()]
    return sorted([*_DATASETS, *members])


def dataset_factory(name: str) -> Callable[..., DataBundle]:
    """The factory registered as ``name``; ConfigError naming close matches when none is."""
    _load()
    if name in _DATASETS:
        return _DATASETS[name]
    prefix, sep, member = name.partition("/")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix].resolve(member)
    close = difflib.get_close_matches(name, _DATASETS, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    families = "".join(f", or {p}/<name>" for p in sorted(_FAMILIES))
    raise ConfigError(
        f"no dataset named {name!r}.{hint} Known: {', '.join(sorted(_DATASETS))}{families}."
    )


def dataset_kwargs(name: str) -> set[str]:
    """The keywords a dataset factory accepts."""
    return set(inspect.signature(dataset_factory(name)).parameters)


def build_data(name: str, **kwargs: Any) -> DataBundle:
    """Build a registered dataset; unknown keywords raise ConfigError naming the accepted ones.

    The bundle records ``name`` and ``kwargs`` (and so does each split, see
    :func:`recipe_of`), so a run trained on it can write a complete recipe.
    """
    factory = dataset_factory(name)
    accepted = dataset_kwargs(name)
    from modelzoo.config import check_keys

    check_keys(kwargs, accepted, f"data ({name})")
    params = inspect.signature(factory).parameters
    missing = [n for n, p in params.items() if p.default is p.empty and n not in kwargs]
    if missing:
        raise ConfigError(
            f"dataset {name!r} needs {', '.join(missing)}; add it to the recipe's data section "
            f"(e.g. data.{missing[0]}=...)"
        )
    bundle = factory(**kwargs)
    bundle.name = name
    bundle.kwargs = dict(kwargs)
    recipe = bundle.recipe
    for split in (bundle.train, bundle.val, bundle.test):
        if split is not None:
            try:
                setattr(split, _RECIPE_ATTR, recipe)
            except AttributeError:  # a dataset class with __slots__: it stays unrecorded
                pass
    return bundle


def recipe_of(dataset: Any) -> dict[str, Any] | None:
    """The ``data`` recipe section (``{"name": ..., **kwargs}``) of a split made by
    :func:`build_data`; None for any other dataset (including a ``Subset`` of one, which
    holds other samples than the recipe would give)."""
    recipe = getattr(dataset, _RECIPE_ATTR, None)
    return dict(recipe) if isinstance(recipe, dict) else None
