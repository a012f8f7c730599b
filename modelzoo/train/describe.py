"""The recipe of a run started from Python: what ``modelzoo train`` would have written.

A :class:`~modelzoo.train.Trainer` built in code has no recipe file, yet its run
directory needs ``config.yaml`` so that ``modelzoo evaluate|resume`` can rebuild it. The
recipe is read back from the live objects: the model's ``create()`` name and keywords,
the data's ``build_data()`` recipe, the task's registered name and non-default
arguments, and the train config. What cannot be recorded (a model not built by
``create()``, a subset of a dataset, a keyword that is not a plain value) is listed, each
line naming the override that supplies it.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from modelzoo.config import TrainConfig
from modelzoo.train.tasks.base import Task

__all__ = ["describe_run"]


def describe_run(
    task: Task, config: TrainConfig, batch_size: int, train_data: Dataset | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The recipe that rebuilds a run of ``task`` with ``config``.

    Returns:
        The recipe (model, data, task, train sections) and, for each part that
        cannot be recorded, a line saying what is missing and which override
        supplies it (empty when the recipe is complete).
    """
    missing: list[str] = []
    recipe = {
        "model": _model_section(task.model, missing),
        "data": {**_data_section(train_data, missing), "batch_size": batch_size},
        "task": _task_section(task, missing),
        "train": config.to_dict(),
    }
    return recipe, missing


def _model_section(model: nn.Module, missing: list[str]) -> dict[str, Any]:
    name = getattr(model, "model_name", None)
    kwargs = getattr(model, "init_kwargs", None)
    if not isinstance(name, str) or not isinstance(kwargs, dict):
        missing.append(
            f"model: {type(model).__name__} was not built by modelzoo.create(); add "
            "model.name=ARCH and its keywords, e.g. model.name=resnet20 model.num_classes=10"
        )
        return {}
    section, bad = _plain_mapping(kwargs)
    if bad:
        missing.append(
            f"model: keyword {bad} of {name} is not a plain value (text, number, list); "
            f"add model.name={name} and model.{bad.split('=')[0]}=... as overrides"
        )
        return section
    mismatch = _architecture_mismatch(model, name, section)
    if mismatch:
        missing.append(
            f"model: the model differs from create({name!r}, **{section}) ({mismatch}), "
            f"e.g. it was changed after create(); add model.name={name} and the keywords "
            "that build it as it is now (e.g. model.num_classes=...)"
        )
        return section
    return {"name": name, **section}


def _data_section(data: Dataset | None, missing: list[str]) -> dict[str, Any]:
    from modelzoo.data.registry import recipe_of  # the datasets load only when asked for

    recipe = recipe_of(data) if data is not None else None
    if recipe is None:
        missing.append(
            "data: the training data was not made by modelzoo.data.build_data(name, ...) "
            "(a subset or a dataset of your own); add data.name=NAME and its keywords, "
            "e.g. data.name=digits data.img_size=16 (modelzoo.data.list_datasets() names "
            "them)"
        )
        recipe = {}
    section, bad = _plain_mapping(recipe)
    if bad:
        missing.append(
            f"data: keyword {bad} is not a plain value; add data.{bad.split('=')[0]}=... "
            "as an override"
        )
    return section


def _task_section(task: Task, missing: list[str]) -> dict[str, Any]:
    from modelzoo.train.tasks import TASKS

    cls = type(task)
    name = getattr(cls, "name", None)
    if TASKS.get(name) is not cls:
        missing.append(
            f"task: {cls.__name__} is not a registered task; add task.name=NAME (one of "
            f"{', '.join(sorted(TASKS))})"
        )
        return {}
    section: dict[str, Any] = {"name": name}
    for param in list(inspect.signature(cls.__init__).parameters.values())[2:]:
        value = getattr(task, param.name, param.default)
        plain, bad = _plain_mapping({param.name: value})
        if not bad and value is not param.empty and value != param.default:
            section.update(plain)
    return section


def _plain(value: Any) -> tuple[Any, bool]:
    """``value`` as YAML can write it (tuples as lists), and whether that was possible."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value, True
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return [v for v, _ in items], all(ok for _, ok in items)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _plain(v) for k, v in value.items()}
        return {k: v for k, (v, _) in items.items()}, all(ok for _, ok in items.values())
    return value, False


def _plain_mapping(values: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The plain entries of ``values``, and ``"key=<value>"`` of the first one that is not."""
    out: dict[str, Any] = {}
    bad = None
    for key, value in values.items():
        plain, ok = _plain(value)
        if ok:
            out[key] = plain
        elif bad is None:
            bad = f"{key}={value!r}"[:120]
    return out, bad


def _architecture_mismatch(model: nn.Module, name: str, kwargs: dict[str, Any]) -> str | None:
    """How ``model`` differs from ``create(name, **kwargs)`` (built on the meta device, so
    nothing is allocated), e.g. after ``reset_classifier``; None when the tensors agree."""
    from modelzoo.registry import create

    try:
        with torch.device("meta"):
            reference = create(name, **kwargs)
    except Exception:  # noqa: BLE001 - a builder that cannot run on meta: nothing to compare
        return None
    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if have == want:
        return None
    for key in sorted(have.keys() | want.keys()):
        if have.get(key) != want.get(key):
            return f"{key}: {have.get(key)} here, {want.get(key)} from create()"
    return None
