"""``finetune()``: resolve the source, build the model, train, report — four separate steps."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from modelzoo.errors import ConfigError
from modelzoo.finetune.card import build_card, write_model_dir
from modelzoo.finetune.data import data_label, resolve_data
from modelzoo.finetune.source import Source, resolve_source
from modelzoo.utils.io import move_into_place

__all__ = ["FinetuneResult", "finetune", "build_model", "SETTINGS_NAME", "SHARED_KEYS"]

_logger = logging.getLogger(__name__)

SETTINGS_NAME = "finetune.json"
# Facts of the data that builders take under the same name (as recipes pass them on).
SHARED_KEYS = ("num_classes", "in_chans", "in_features", "input_size", "vocab_size", "img_size")
# The bridges take these two of them (timm and torchvision name the rest their own way).
EXTERNAL_SHARED_KEYS = ("num_classes", "in_chans")


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
        data: the ``DataBundle`` trained and tested on.
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


# ------------------------------------------------------------------------------ arguments


def _check_count(name: str, value: Any, low: int, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}. {fix}")


def _check_arguments(epochs: Any, freeze_epochs: Any, batch_size: Any) -> None:
    """finetune's own arguments; the training ones (lr, layer_decay...) TrainConfig checks."""
    _check_count("epochs", epochs, 1, "Train for at least one epoch, e.g. epochs=10.")
    _check_count("batch_size", batch_size, 1, "Use e.g. batch_size=32.")
    _check_count("freeze_epochs", freeze_epochs, 0, "Use 0 to train everything from the start.")
    if freeze_epochs > epochs:
        raise ConfigError(
            f"freeze_epochs must be in [0, epochs={epochs}]; got {freeze_epochs}. The backbone "
            "is frozen for the first freeze_epochs epochs, so at most all of them."
        )


def _check_run_dir(run_dir: Path | None) -> None:
    """Refuse a run directory that holds anything: a fine-tune never mixes with other files."""
    if run_dir is None or not run_dir.exists():
        return
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another run directory")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} exists and is not a directory; choose another run directory")
    if any(run_dir.iterdir()):
        raise ConfigError(
            f"{run_dir} is not empty; choose a new or empty run directory (a fine-tune writes "
            "its whole run there and never mixes it with other files)"
        )


# ------------------------------------------------------------------------------ the model


def _source_of_model(model: nn.Module) -> Source:
    """A model the caller built: its name, and the weights it reports having loaded."""
    arch = str(getattr(model, "model_name", None) or type(model).__name__)
    report = getattr(model, "load_report", None)
    label = getattr(report, "source", None)
    return Source(arch=arch, name=arch, label=label, facts={"name": label} if label else None)


def _data_kwargs_for(arch: str, info: Mapping[str, Any]) -> dict[str, Any]:
    """The builder arguments the data decides (head size, input channels, ...)."""
    if arch.startswith(("timm/", "torchvision/")):
        keys: Sequence[str] = EXTERNAL_SHARED_KEYS
    else:
        from modelzoo.registry import accepted_kwargs

        accepted = accepted_kwargs(arch)
        keys = [k for k in SHARED_KEYS if accepted is None or k in accepted]
    return {k: info[k] for k in keys if k in info}


def build_model(
    source: Source | nn.Module,
    info: Mapping[str, Any],
    model_kwargs: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model a fine-tune trains: the source's weights, a head for the data.

    Args:
        source: from :func:`~modelzoo.finetune.resolve_source`, or a built model (its
            head is reset when the data has another number of classes).
        info: the data's facts (``num_classes``, ``in_chans``, ...), which set the
            builder arguments of the same names; the loader adapts the weights to them.
        model_kwargs: further builder arguments; they win over the data's.

    Returns:
        The model, and the recipe's ``model`` section that rebuilds it.
    """
    given = dict(model_kwargs or {})
    if isinstance(source, nn.Module):
        model = source
        num_classes = info.get("num_classes")
        current = getattr(model, "num_classes", None)
        if num_classes is not None and current is not None and current != num_classes:
            if not callable(getattr(model, "reset_classifier", None)):
                raise ConfigError(
                    f"the model has {current} outputs and the data {num_classes} classes, and "
                    "it has no reset_classifier(); build it with num_classes to match"
                )
            model.reset_classifier(num_classes)
        kwargs = dict(getattr(model, "init_kwargs", {}) or {})
        if num_classes is not None:
            kwargs["num_classes"] = num_classes
        name = str(getattr(model, "model_name", None) or type(model).__name__)
        return model, {"name": name, **kwargs}

    import modelzoo

    kwargs = {**_data_kwargs_for(source.arch, info), **given}
    if source.saved_model:
        from modelzoo.weights.pretrained import from_pretrained

        # The folder's config.json holds the architecture's arguments; the data's win.
        model = from_pretrained(str(source.pretrained), **kwargs)
        kwargs = dict(getattr(model, "init_kwargs", kwargs))
    else:
        kwargs = {**source.model_kwargs, **kwargs}
        model = modelzoo.create(source.name, pretrained=source.pretrained, **kwargs)
    report = getattr(model, "load_report", None)
    if report is not None:
        _logger.info("%s", report)
    recipe_model = {"name": source.name, **kwargs}
    if source.pretrained:
        recipe_model["pretrained"] = source.pretrained  # a file: the recipe loads it again
    return model, recipe_model


# ------------------------------------------------------------------------------ the run


def _is_main_process() -> bool:
    # The Trainer learns its rank later; torchrun states it in the environment from the start.
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def _staged_run_dir(run_dir: Path | None) -> Iterator[Path | None]:
    """A hidden sibling folder to write the run into, renamed to ``run_dir`` on success.

    A fine-tune that fails (an error, Ctrl-C) leaves nothing behind: the staged folder
    and any parent folders this call created are removed; a folder that existed before
    (necessarily empty, see ``_check_run_dir``) is left as it was.
    """
    if run_dir is None or not _is_main_process():
        yield run_dir  # other ranks write nothing
        return
    created = [p for p in (run_dir.parent, *run_dir.parent.parents) if not p.exists()]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=".partial", dir=run_dir.parent)
    )
    try:
        yield staging
        _check_run_dir(run_dir)  # nothing appeared there meanwhile
        if run_dir.exists():
            run_dir.rmdir()  # empty: the staged run takes its place
        move_into_place(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        _logger.info("the fine-tune did not finish; %s was not written", run_dir)
        raise
    from modelzoo.utils.io import fsync_dir

    fsync_dir(run_dir.parent)


def finetune(
    model_or_tag: str | os.PathLike[str] | nn.Module,
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
            ``pretrained``), ``timm/<name>[.<tag>]``, ``torchvision/<name>[.<tag>]``, a
            ``save_pretrained`` folder, a run directory, or a built model (see
            :func:`~modelzoo.finetune.resolve_source`).
        data: a dataset name (``digits``), an image folder or a CSV file.
        data_kwargs: the dataset's options, e.g. ``{"classes": [5, 6, 7, 8, 9],
            "train_per_class": 10}``.
        model_kwargs: further builder arguments (e.g. ``drop_rate``).
        pretrained: for a name without a tag: True (its default weights), a tag, a file,
            a directory or a URL; default: none (a fresh model).
        num_classes: the head size (default: the data's number of classes).
        in_chans: input channels (default: the data's; pretrained first layers are adapted).
        task: the training task (default: the data's, e.g. ``classification``,
            ``regression`` for a numeric CSV target, ``lm`` for text).
        epochs: passes over the training data.
        lr: the learning rate (of the head, with ``layer_decay``).
        weight_decay: decoupled weight decay on weights (``ndim >= 2``) only.
        freeze_epochs: epochs with the backbone frozen (BatchNorm statistics included)
            before everything trains.
        layer_decay: per-layer learning-rate factor going from the head to the input
            (``train.layer_decay``: the recipe holds it, so ``modelzoo resume`` keeps it).
        batch_size: samples per step.
        warmup_steps: linear learning-rate warm-up before the cosine schedule.
        optimizer: ``adamw``, ``adam`` or ``sgd``.
        run_dir: where the run goes (a new or empty folder); None writes nothing (the
            card is still returned). A fine-tune that fails leaves nothing there.
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
        ConfigError: a bad argument (named, with its accepted range), unknown data or
            options, or a run directory that is not new or empty.
        UnknownModelError: no such model.
        WeightsError: weights that cannot be found or do not fit the model (beyond the
            head and the input layer).
    """
    from modelzoo.config import TrainConfig

    _check_arguments(epochs, freeze_epochs, batch_size)
    run_dir = Path(run_dir) if run_dir is not None else None
    _check_run_dir(run_dir)
    # Every training value goes through TrainConfig's checks before anything is built.
    config = TrainConfig.from_dict(
        {
            "epochs": epochs,
            "lr": lr,
            "weight_decay": weight_decay,
            "layer_decay": layer_decay,
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

    # 1. What to start from, resolved once.
    if isinstance(model_or_tag, nn.Module):
        source = _source_of_model(model_or_tag)
    elif isinstance(model_or_tag, (str, os.PathLike)):
        source = resolve_source(model_or_tag, pretrained)
    else:
        raise ConfigError(
            "model_or_tag must be a model name, arch.tag, timm/..., torchvision/..., a folder "
            f"or an nn.Module; got {type(model_or_tag).__name__}"
        )
    data_name, data_kwargs, bundle = resolve_data(
        data, data_kwargs, source=source, batch_size=batch_size
    )
    info = dict(bundle.info)
    if num_classes is not None:
        info["num_classes"] = num_classes
    if in_chans is not None:
        info["in_chans"] = in_chans

    # 2. The model.
    from modelzoo.train.trainer import seed_everything

    seed_everything(seed)  # the new head's initialization
    built = model_or_tag if isinstance(model_or_tag, nn.Module) else source
    model, recipe_model = build_model(built, info, model_kwargs)
    recipe = {
        "model": recipe_model,
        "data": {"name": data_name, **data_kwargs, "batch_size": batch_size},
        "task": {"name": task or info.get("task") or "classification"},
        "train": config.to_dict(),
    }

    with _staged_run_dir(run_dir) as staging:
        # 3. Training.
        trainer, unfreeze, seconds = _train(
            model, recipe, info, bundle, config, staging, batch_size, freeze_epochs, callbacks
        )
        # 4. The report: metrics on the held-out splits, the card, the model folder.
        label = data_label(data_name, data_kwargs)
        metrics: dict[str, dict[str, float]] = {}
        for split in ("test", "val"):
            dataset = getattr(bundle, split)
            if dataset is not None and len(dataset):
                metrics[f"{label}/{split}"] = trainer.evaluate(dataset)
        model = trainer.model.eval()
        settings = {
            "source": source.label,
            "freeze_epochs": freeze_epochs,
            "layer_decay": layer_decay,
            "frozen_at_end": bool(unfreeze is not None and unfreeze.frozen),
            "seconds": round(seconds, 2),
            "steps": trainer.step,
        }
        card = build_card(model, recipe, metrics, settings, info, source)
        if staging is not None and trainer.dist.is_main:
            write_model_dir(
                model, staging / "model", card, recipe_model, final_dir=run_dir / "model"
            )
            trainer.run.write_json(SETTINGS_NAME, settings)
            trainer.run.write_json("test_metrics.json", metrics.get(f"{label}/test", {}))
    if run_dir is not None:
        trainer.run_dir = run_dir  # the staged folder is now run_dir
        if trainer.run is not None:
            trainer.run.path = run_dir
    model_dir = run_dir / "model" if run_dir is not None else None
    return FinetuneResult(model, metrics, run_dir, model_dir, card, source.label, trainer, bundle)


def _train(
    model: nn.Module,
    recipe: dict[str, Any],
    info: Mapping[str, Any],
    bundle: Any,
    config: Any,
    run_dir: Path | None,
    batch_size: int,
    freeze_epochs: int,
    callbacks: Sequence[Any],
) -> tuple[Any, Any, float]:
    """Train with the project's Trainer; the backbone frozen for ``freeze_epochs`` first."""
    from modelzoo.config import recipe_from_dict
    from modelzoo.train.recipes import build_task
    from modelzoo.train.trainer import Trainer
    from modelzoo.transfer import GradualUnfreeze

    # The recipe's task, with the conventions the data states (pad ids, stateful streams).
    task = build_task(recipe_from_dict(recipe), model, dict(info))
    unfreeze = None
    hooks = list(callbacks)
    if freeze_epochs:
        unfreeze = GradualUnfreeze(model, unfreeze_at_epoch=freeze_epochs)
        hooks.insert(0, unfreeze)
    trainer = Trainer(
        task,
        config,
        run_dir=run_dir,
        recipe=recipe,
        batch_size=batch_size,
        collate_fn=bundle.collate_fn,
        shuffle=info.get("shuffle", True),
        callbacks=hooks,
    )
    started = time.perf_counter()
    trainer.fit(bundle.train, bundle.val)
    return trainer, unfreeze, time.perf_counter() - started
