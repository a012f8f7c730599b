"""Fine-tune a zoo model, a weight set or a timm/torchvision model on new data, in one call.

    from modelzoo.finetune import finetune
    result = finetune("resnet20.digits_0to4", "digits",
                      data_kwargs={"classes": [5, 6, 7, 8, 9], "train_per_class": 10},
                      epochs=30, freeze_epochs=5, run_dir="runs/ft")
    result.metrics            # {"digits[5,6,7,8,9]/test": {"accuracy": ..., "loss": ...}}
    result.run_dir / "model"  # save_pretrained layout + model_card.json / model_card.md

``data`` is a built-in dataset name (``modelzoo.data.list_datasets()``), a folder
of images with one subfolder per class, or a CSV file. The model gets a new head
for the data's classes (``num_classes`` and ``in_chans`` come from the data),
keeps the pretrained backbone, and trains with the project's ``Trainer``:

- ``freeze_epochs``: the backbone is frozen (BatchNorm statistics included) for
  that many epochs and then trained too (``transfer.GradualUnfreeze``);
- ``layer_decay``: learning rates shrink by this factor per layer away from the
  head (``transfer.param_groups``), with weight decay on weights only.

The run directory is a regular one (``config.yaml``, ``metrics.csv``,
``checkpoints/``, ``plots/``; ``modelzoo evaluate RUN_DIR`` works on it) plus
``finetune.json`` (the settings the recipe cannot hold) and ``model/``: the
fine-tuned model in the ``save_pretrained`` layout with its card.

When a weight set is fine-tuned on the dataset it was trained on, the data's
preprocessing (``img_size``, ``flatten``, ``seq_len``, ``vocab``) defaults to the
weight set's recipe, so ``finetune("mlp.digits", "digits")`` flattens the images
as the weights expect. An image folder defaults to the weights' image size and
channels and holds out 20% of each class for testing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modelzoo.errors import ConfigError, ModelzooError

__all__ = ["FinetuneResult", "finetune", "resolve_data", "parse_key_values", "CARD_NAME"]

_logger = logging.getLogger(__name__)

CARD_NAME = "model_card"  # model/model_card.json and model/model_card.md
SETTINGS_NAME = "finetune.json"
EXTERNAL_PREFIXES = ("timm/", "torchvision/")
# Data options that describe how inputs look rather than which samples are used: a weight
# set's recipe supplies them when the same dataset is fine-tuned on.
PREPROCESSING_KEYS = ("img_size", "flatten", "seq_len", "vocab", "in_chans")
# Facts of the data that builders take under the same name (as recipes pass them on).
SHARED_KEYS = ("num_classes", "in_chans", "in_features", "input_size", "vocab_size", "img_size")


@dataclass
class FinetuneResult:
    """What :func:`finetune` produced.

    Attributes:
        model: the fine-tuned model (on the training device, eval mode).
        metrics: dataset/split -> metric -> value on the held-out split(s): the
            test split, and the validation split when there is one.
        run_dir: the run directory, or None when nothing was written.
        model_dir: ``run_dir / "model"`` (``from_pretrained`` it), or None.
        card: the fine-tuned model's card (also ``model/model_card.json``).
        source: the weights fine-tuned from (``arch.tag``, a path), or None for a fresh model.
        trainer: the trainer, for its ``step_losses``, ``evaluate`` and ``predict``.
    """

    model: nn.Module
    metrics: dict[str, dict[str, float]]
    run_dir: Path | None
    model_dir: Path | None
    card: dict[str, Any]
    source: str | None
    trainer: Any = field(repr=False)
    data: Any = field(repr=False)

    @property
    def test_metrics(self) -> dict[str, float]:
        """The metrics on the test split (on the validation split when the data has no test)."""
        for key, values in self.metrics.items():
            if key.endswith("/test"):
                return values
        return next(iter(self.metrics.values()), {})


# --------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------


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


def _split_name(name: str) -> tuple[str, str | None]:
    if name.startswith(EXTERNAL_PREFIXES):
        return name, None
    arch, _, tag = name.partition(".")
    return arch, tag or None


def _weight_set(name: str, pretrained: bool | str | None) -> Any:
    """The weight set that ``name``/``pretrained`` select, or None (fresh or a file)."""
    arch, tag = _split_name(name)
    if name.startswith(EXTERNAL_PREFIXES):
        return None
    from modelzoo.weights import get_weight_set, is_tag

    if tag is not None:
        return get_weight_set(arch, tag)
    if pretrained is True:
        return get_weight_set(arch)
    if isinstance(pretrained, str) and is_tag(arch, pretrained):
        return get_weight_set(arch, pretrained)
    return None


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def resolve_data(
    data: Any,
    data_kwargs: Mapping[str, Any] | None = None,
    *,
    weight_set: Any = None,
    batch_size: int | None = None,
) -> tuple[str, dict[str, Any], Any]:
    """Build the data a fine-tune trains on.

    Args:
        data: a registered dataset name, an image folder (``root/<class>/<image>``),
            a CSV file, or a ``DataBundle``.
        data_kwargs: the dataset's options (e.g. ``classes``, ``train_per_class``).
        weight_set: the weights being fine-tuned; their recipe and input spec supply
            preprocessing defaults (see the module docstring).
        batch_size: the trainer's batch size, for datasets laid out for one (text streams).

    Returns:
        The dataset name, the options it was built with, and the ``DataBundle``.
    """
    from modelzoo.data import DataBundle, build_data, list_datasets

    kwargs = dict(data_kwargs or {})
    if isinstance(data, DataBundle):
        return "custom", kwargs, data
    if not isinstance(data, (str, os.PathLike)):
        raise ConfigError(
            f"data must be a dataset name, an image folder, a CSV file or a DataBundle; got "
            f"{type(data).__name__}"
        )
    text = os.fspath(data)
    spec = dict(getattr(weight_set, "input_spec", None) or {})
    recipe = getattr(weight_set, "recipe", None)
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
        for key in ("img_size", "in_chans"):
            if key in spec and key not in kwargs:
                kwargs[key] = spec[key]
        kwargs.setdefault("test_fraction", 0.2)
    elif path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
        name = "csv"
        kwargs.setdefault("path", str(path))
        if path.suffix.lower() == ".tsv":
            kwargs.setdefault("delimiter", "\t")
    else:
        from modelzoo.data.registry import dataset_factory

        if path.suffix or os.sep in text:
            raise ConfigError(
                f"data={text!r} is not an image folder or a CSV file (no such "
                f"{'file' if path.suffix else 'folder'}); pass a dataset name "
                f"({', '.join(list_datasets())}), a folder root/<class>/<image>, or a .csv file"
            )
        dataset_factory(text)  # raises, naming the datasets that exist
    from modelzoo.data.registry import dataset_kwargs

    if batch_size is not None and "batch_size" in dataset_kwargs(name):
        kwargs.setdefault("batch_size", batch_size)
    bundle = build_data(name, **kwargs)
    return name, kwargs, bundle


def _data_label(name: str, kwargs: Mapping[str, Any]) -> str:
    """``digits``, ``digits[5,6,7,8,9]``, ``image_folder(<root>)``, ``csv(<file>)``."""
    if name == "image_folder":
        return f"image_folder({kwargs.get('root')})"
    if name == "csv":
        return f"csv({Path(str(kwargs.get('path'))).name})"
    classes = kwargs.get("classes")
    return f"{name}[{','.join(str(c) for c in classes)}]" if classes else name


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def _model_kwargs(name: str, info: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The builder arguments the data decides (head size, input channels, ...)."""
    kwargs = dict(given)
    if name.startswith(EXTERNAL_PREFIXES):
        keys: Sequence[str] = ("num_classes", "in_chans")
    else:
        from modelzoo.registry import accepted_kwargs

        accepted = accepted_kwargs(name)
        keys = [k for k in SHARED_KEYS if accepted is None or k in accepted]
    for key in keys:
        if key in info and key not in kwargs:
            kwargs[key] = info[key]
    return kwargs


def _build_model(
    model_or_tag: str | nn.Module,
    info: Mapping[str, Any],
    model_kwargs: Mapping[str, Any],
    pretrained: bool | str | None,
) -> tuple[nn.Module, dict[str, Any], str | None]:
    """The model to fine-tune, the builder arguments of the recipe, and the weights' label."""
    import modelzoo

    if isinstance(model_or_tag, nn.Module):
        model = model_or_tag
        num_classes = info.get("num_classes")
        current = getattr(model, "num_classes", None)
        if num_classes is not None and current is not None and current != num_classes:
            if not callable(getattr(model, "reset_classifier", None)):
                raise ConfigError(
                    f"the model has {current} outputs and the data {num_classes} classes, and it "
                    "has no reset_classifier(); build it with num_classes to match"
                )
            model.reset_classifier(num_classes)
        report = getattr(model, "load_report", None)
        source = getattr(report, "source", None)
        kwargs = dict(getattr(model, "init_kwargs", {}) or {})
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        return model, kwargs, source
    if not isinstance(model_or_tag, str):
        raise ConfigError(
            f"model_or_tag must be a model name, arch.tag, timm/..., torchvision/... or an "
            f"nn.Module; got {type(model_or_tag).__name__}"
        )
    name = model_or_tag
    kwargs = _model_kwargs(name, info, model_kwargs)
    weights = _weight_set(name, pretrained)
    if name.startswith(EXTERNAL_PREFIXES) and pretrained is None:
        pretrained = False  # the bridges never reach the libraries' hubs
    create_kwargs = dict(kwargs)
    if pretrained is not None:
        create_kwargs["pretrained"] = pretrained
    model = modelzoo.create(name, **create_kwargs)
    report = getattr(model, "load_report", None)
    if weights is not None:
        source = weights.name
    elif report is not None:
        source = report.source
    else:
        source = None
    if report is not None:
        _logger.info("%s", report)
    recipe_kwargs = dict(kwargs)
    if weights is None and isinstance(pretrained, str):
        recipe_kwargs["pretrained"] = pretrained  # a file or URL: the recipe loads it again
    return model, recipe_kwargs, source


def _recipe_model_name(model_or_tag: str | nn.Module, pretrained: bool | str | None) -> str:
    if isinstance(model_or_tag, nn.Module):
        return str(getattr(model_or_tag, "model_name", None) or type(model_or_tag).__name__)
    if _split_name(model_or_tag)[1] is None and not model_or_tag.startswith(EXTERNAL_PREFIXES):
        ws = _weight_set(model_or_tag, pretrained)
        if ws is not None:
            return ws.name  # `modelzoo evaluate RUN_DIR` rebuilds from the same weights
    return model_or_tag


# --------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------


def _layer_decay_optimizer(model: nn.Module, cfg: Any, layer_decay: float) -> torch.optim.Optimizer:
    """The trainer's optimizer, with a learning rate per layer (``transfer.param_groups``)."""
    from modelzoo.train.param_groups import param_groups

    groups = param_groups(model, cfg.lr, weight_decay=cfg.weight_decay, layer_decay=layer_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, betas=cfg.betas)


def finetune(
    model_or_tag: str | nn.Module,
    data: Any = "digits",
    *,
    data_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    pretrained: bool | str | None = None,
    num_classes: int | None = None,
    in_chans: int | None = None,
    task: str | None = None,
    epochs: int = 30,
    lr: float = 1e-3,
    weight_decay: float = 0.01,
    freeze_epochs: int = 0,
    layer_decay: float | None = None,
    batch_size: int = 32,
    warmup_steps: int = 0,
    optimizer: str = "adamw",
    run_dir: str | Path | None = None,
    seed: int = 0,
    precision: str = "32",
    device: str = "auto",
    progress: bool = True,
    plots: bool = True,
    callbacks: Sequence[Any] = (),
    train_options: Mapping[str, Any] | None = None,
) -> FinetuneResult:
    """Fine-tune a model on a dataset with the project's trainer; return its metrics and card.

    Args:
        model_or_tag: ``arch.tag`` (a weight set), ``arch`` (fresh, or see
            ``pretrained``), ``timm/<name>``, ``torchvision/<name>``, or a built model.
        data: a dataset name (``digits``), an image folder or a CSV file.
        data_kwargs: the dataset's options, e.g. ``{"classes": [5, 6, 7, 8, 9],
            "train_per_class": 10}``.
        model_kwargs: further builder arguments (e.g. ``drop_rate``).
        pretrained: for an ``arch`` name: True (its default weights), a tag, a file,
            a directory or a URL; timm/torchvision models default to False.
        num_classes: the head size (default: the data's number of classes).
        in_chans: input channels (default: the data's; pretrained first layers are adapted).
        task: the training task (default: the data's, e.g. ``classification``,
            ``regression`` for a numeric CSV target, ``lm`` for text).
        epochs: passes over the training data.
        lr: the learning rate (of the head, with ``layer_decay``).
        weight_decay: decoupled weight decay on weights (``ndim >= 2``) only.
        freeze_epochs: epochs with the backbone frozen before everything trains.
        layer_decay: per-layer learning-rate factor going from the head to the input.
        batch_size: samples per step.
        warmup_steps: linear learning-rate warm-up before the cosine schedule.
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        run_dir: where the run goes; None writes nothing (the card is still returned).
        seed: seeds the new head's initialization and the data order.
        precision: ``"32"``, ``"bf16-mixed"``, ``"16-mixed"`` or ``"bf16-true"``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: show a progress bar.
        plots: write ``plots/*.png`` (with a run directory).
        callbacks: more trainer callbacks (``on_epoch_start``/``on_step``).
        train_options: other ``TrainConfig`` fields (``clip_grad_norm``, ``eval_every``...).

    Returns:
        A :class:`FinetuneResult`.

    Raises:
        ConfigError: unknown data, options or model arguments; a run already in ``run_dir``.
        WeightsError: weights that do not fit the model (beyond the head and input layer).
    """
    from modelzoo.config import TrainConfig, recipe_from_dict
    from modelzoo.train.recipes import build_task
    from modelzoo.train.trainer import Trainer, seed_everything
    from modelzoo.transfer import GradualUnfreeze

    if freeze_epochs < 0 or freeze_epochs > epochs:
        raise ConfigError(f"freeze_epochs must be in [0, epochs={epochs}]; got {freeze_epochs}")
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and (run_dir / "checkpoints" / "last.ckpt").exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another run directory")
    name = model_or_tag if isinstance(model_or_tag, str) else None
    weights = _weight_set(name, pretrained) if name else None
    data_name, data_kwargs, bundle = resolve_data(
        data, data_kwargs, weight_set=weights, batch_size=batch_size
    )
    info = dict(bundle.info)
    if num_classes is not None:
        info["num_classes"] = num_classes
    if in_chans is not None:
        info["in_chans"] = in_chans

    config = TrainConfig.from_dict(
        {
            "epochs": epochs,
            "lr": lr,
            "weight_decay": weight_decay,
            "optimizer": optimizer,
            "scheduler": "cosine",
            "warmup_steps": warmup_steps,
            "seed": seed,
            "precision": precision,
            "device": device,
            "progress": progress,
            "plots": plots,
            "log_every": 1,
            **dict(train_options or {}),
        },
        where="train",
    )
    seed_everything(seed)  # the new head's initialization
    model, recipe_model_kwargs, source = _build_model(
        model_or_tag, info, dict(model_kwargs or {}), pretrained
    )
    recipe = {
        "model": {"name": _recipe_model_name(model_or_tag, pretrained), **recipe_model_kwargs},
        "data": {"name": data_name, **data_kwargs, "batch_size": batch_size},
        "task": {"name": task or info.get("task") or "classification"},
        "train": config.to_dict(),
    }
    # The recipe's task, with the conventions the data states (pad ids, stateful streams).
    train_task = build_task(recipe_from_dict(recipe), model, info)
    unfreeze = None
    hooks = list(callbacks)
    if freeze_epochs:
        unfreeze = GradualUnfreeze(model, unfreeze_at_epoch=freeze_epochs)
        hooks.insert(0, unfreeze)
    trainer = Trainer(
        train_task,
        config,
        run_dir=run_dir,
        recipe=recipe,
        batch_size=batch_size,
        collate_fn=bundle.collate_fn,
        shuffle=info.get("shuffle", True),
        callbacks=hooks,
    )
    if layer_decay is not None:
        # The one optimizer the trainer steps, rebuilt with per-layer learning rates before
        # fit() attaches the schedule to it (see the report: a Trainer hook would be cleaner).
        trainer.optimizers["main"] = _layer_decay_optimizer(trainer.model, config, layer_decay)
    started = time.perf_counter()
    trainer.fit(bundle.train, bundle.val)
    seconds = time.perf_counter() - started

    label = _data_label(data_name, data_kwargs)
    metrics: dict[str, dict[str, float]] = {}
    for split in ("test", "val"):
        dataset = getattr(bundle, split)
        if dataset is not None and len(dataset):
            metrics[f"{label}/{split}"] = trainer.evaluate(dataset)
    model = trainer.model.eval()
    settings = {
        "source": source,
        "freeze_epochs": freeze_epochs,
        "layer_decay": layer_decay,
        "frozen_at_end": bool(unfreeze is not None and unfreeze.frozen),
        "seconds": round(seconds, 2),
        "steps": trainer.step,
    }
    card = _card(model, recipe, metrics, settings, info, source, weights)
    model_dir = None
    if run_dir is not None and trainer.dist.is_main:
        model_dir = _write_model(model, run_dir, card, recipe_model_kwargs)
        (run_dir / SETTINGS_NAME).write_text(json.dumps(settings, indent=2) + "\n")
        (run_dir / "test_metrics.json").write_text(
            json.dumps(metrics.get(f"{label}/test", {}), indent=2) + "\n"
        )
    return FinetuneResult(model, metrics, run_dir, model_dir, card, source, trainer, bundle)


# --------------------------------------------------------------------------------------
# The card
# --------------------------------------------------------------------------------------


def _source_facts(source: str | None, weights: Any) -> dict[str, Any] | None:
    if source is None:
        return None
    if weights is None:
        return {"name": source}
    return {
        "name": weights.name,
        "files": [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in weights.files],
        "metrics": weights.metrics,
        "license": weights.license,
        "description": weights.description,
    }


def _card(
    model: nn.Module,
    recipe: dict[str, Any],
    metrics: dict[str, dict[str, float]],
    settings: dict[str, Any],
    info: Mapping[str, Any],
    source: str | None,
    weights: Any,
) -> dict[str, Any]:
    from modelzoo import __version__ as version

    labels = info.get("classes")
    if labels is None and "num_classes" in info and recipe["task"]["name"] == "classification":
        chosen = recipe["data"].get("classes")
        labels = sorted(chosen) if chosen else list(range(int(info["num_classes"])))
    spec = {k: info[k] for k in ("img_size", "in_chans", "in_features") if k in info}
    if labels is not None:
        spec["labels"] = [str(c) for c in labels]
    if "feature_mean" in info:
        spec["feature_mean"], spec["feature_std"] = info["feature_mean"], info["feature_std"]
    return {
        "model_name": recipe["model"]["name"],
        "num_params": sum(p.numel() for p in model.parameters()),
        "metrics": metrics,
        "source_weights": _source_facts(source, weights),
        "license": getattr(weights, "license", None) or "BSD-3-Clause",
        "finetune": settings,
        "recipe": recipe,
        "input_spec": spec,
        "modelzoo_version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _markdown(card: dict[str, Any], model_dir: Path) -> str:
    settings = card["finetune"]
    source = card["source_weights"]
    train = card["recipe"]["train"]
    lines = [
        f"# {card['model_name']} fine-tuned",
        "",
        f"- from: {source['name'] if source else 'a fresh initialization (no weights)'}",
        f"- data: `{json.dumps({k: v for k, v in card['recipe']['data'].items()})}`",
        f"- training: {train['epochs']} epochs ({settings['steps']} steps, "
        f"{settings['seconds']} s), lr {train['lr']}, {train['optimizer']}, weight decay "
        f"{train['weight_decay']}, backbone frozen for {settings['freeze_epochs']} epochs, "
        f"layer decay {settings['layer_decay']}, seed {train['seed']}",
        f"- parameters: {card['num_params']:,}",
        f"- license: {card['license']}",
        "",
        "| data | metric | value |",
        "|---|---|---|",
    ]
    for dataset, values in card["metrics"].items():
        for metric, value in values.items():
            lines.append(f"| {dataset} | {metric} | {value:.4f} |")
    if source and source.get("metrics"):
        lines += ["", f"Source weights ({source['name']}) as published:", ""]
        for dataset, values in source["metrics"].items():
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            lines.append(f"- {dataset}: {shown}")
    lines += [
        "",
        'Load it with `modelzoo.from_pretrained("' + str(model_dir) + '")`.',
        "",
    ]
    return "\n".join(lines)


def _write_model(
    model: nn.Module, run_dir: Path, card: dict[str, Any], kwargs: Mapping[str, Any]
) -> Path:
    from modelzoo.weights import sha256_file
    from modelzoo.weights.pretrained import save_pretrained

    model_dir = run_dir / "model"
    config = None
    if not hasattr(model, "init_kwargs"):
        config = {k: v for k, v in kwargs.items() if k != "pretrained"}
    try:
        save_pretrained(model, model_dir, config=config)
    except ModelzooError as err:
        _logger.warning("the fine-tuned model was not saved in the save_pretrained layout: %s", err)
        model_dir.mkdir(parents=True, exist_ok=True)
        from modelzoo.weights import save_weights

        save_weights(model.state_dict(), model_dir / "model.safetensors")
    weights_file = model_dir / "model.safetensors"
    card["files"] = [
        {
            "name": weights_file.name,
            "size": weights_file.stat().st_size,
            "sha256": sha256_file(weights_file),
        }
    ]
    (model_dir / f"{CARD_NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    (model_dir / f"{CARD_NAME}.md").write_text(_markdown(card, model_dir))
    return model_dir
