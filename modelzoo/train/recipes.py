"""From a recipe to a run: build the data, model, task and trainer; train, resume, evaluate.

This is what ``modelzoo train|resume|evaluate`` call; it is also the Python
API for running a recipe::

    from modelzoo.train.recipes import train_recipe
    result = train_recipe(load_recipe("configs/resnet/resnet20_digits.yaml"), "runs/r20")
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from modelzoo.config import Recipe, check_batch_size, check_keys, load_recipe
from modelzoo.data import DataBundle, build_data
from modelzoo.errors import CheckpointError, ConfigError
from modelzoo.registry import accepted_kwargs, check_kwargs, create
from modelzoo.train.rl import is_rl_recipe
from modelzoo.train.tasks import TASKS, Task
from modelzoo.train.trainer import Trainer, seed_everything

__all__ = [
    "RunResult",
    "build_run",
    "build_task",
    "data_options",
    "model_kwargs",
    "validate_recipe",
    "train_recipe",
    "resume_run",
    "evaluate_run",
    "TASKS",
]

_logger = logging.getLogger(__name__)

# Facts a dataset states that a model builder takes under the same name.
_SHARED_KEYS = (
    "num_classes",
    "in_chans",
    "in_features",
    "input_size",
    "vocab_size",
    "img_size",
    "sample_rate",
)
DRY_RUN_BATCHES = 2


@dataclass
class RunResult:
    run_dir: Path | None
    trainer: Trainer
    data: DataBundle
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]


def model_kwargs(recipe: Recipe, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The recipe's model name and builder arguments, completed by the data's facts
    (``num_classes``, ``in_chans``, ``vocab_size``, ... when the builder takes them)."""
    kwargs = dict(recipe.model)
    name = kwargs.pop("name")
    if name.startswith(("timm/", "torchvision/")):
        return name, kwargs
    accepted = accepted_kwargs(name) or set()
    for key in _SHARED_KEYS:
        if key in info and key in accepted and key not in kwargs:
            kwargs[key] = info[key]
    return name, kwargs


def build_task(recipe: Recipe, model: torch.nn.Module, info: dict[str, Any]) -> Task:
    """The recipe's task for ``model``, with the conventions the data states (pad ids, ...)."""
    options = dict(recipe.task)
    name = options.pop("name", None) or info.get("task")
    if name is None:
        raise ConfigError(
            "the recipe's task section needs a name, e.g. task: {name: classification}"
        )
    if name not in TASKS:
        check_keys({name: None}, TASKS, "task.name")
    cls = TASKS[name]
    params = inspect.signature(cls.__init__).parameters
    check_keys(options, [p for p in params if p not in ("self", "model")], f"task ({name})")
    for key in ("pad_id", "bos_id", "eos_id", "stateful"):  # conventions come from the data
        if key in params and key in info and key not in options:
            options[key] = info[key]
    return cls(model, **options)


def validate_recipe(recipe: Recipe) -> None:
    """Check every model, data and task key against its builder, without building anything."""
    from modelzoo.data.registry import dataset_kwargs

    if is_rl_recipe(recipe):  # ppo / a2c / dqn: environments instead of datasets
        from modelzoo.train.rl.runner import validate_rl_recipe

        return validate_rl_recipe(recipe)
    model = dict(recipe.model)
    name = model.pop("name")
    if not name.startswith(("timm/", "torchvision/")):
        check_kwargs(name, model)
    data = dict(recipe.data)
    data_name = data.pop("name")
    data.pop("batch_size", None)
    check_keys(data, dataset_kwargs(data_name), f"data ({data_name})")
    task = dict(recipe.task)
    task_name = task.pop("name", None)
    if task_name is not None:
        check_keys({task_name: None}, TASKS, "task.name")
        params = inspect.signature(TASKS[task_name].__init__).parameters
        check_keys(task, [p for p in params if p not in ("self", "model")], f"task ({task_name})")


def _tiny(dataset: Dataset | None, size: int) -> Dataset | None:
    if dataset is None:
        return None
    return Subset(dataset, range(min(size, len(dataset))))


def data_options(recipe: Recipe) -> tuple[str, dict[str, Any]]:
    """The recipe's dataset name and ``build_data`` options (without ``batch_size``, which is
    the trainer's); ``transforms: card`` becomes the weight set the model is loaded from, so
    the data is prepared as its card says."""
    options = dict(recipe.data)
    name = options.pop("name")
    options.pop("batch_size", None)
    if options.get("transforms") == "card":
        from modelzoo.data.torchvision_preprocessing import card_source

        options["transforms"] = card_source(recipe.model)
    return name, options


def build_run(recipe: Recipe, run_dir: str | Path | None = None) -> tuple[Trainer, DataBundle]:
    """Data, model, task and trainer for a recipe (nothing trained yet)."""
    cfg = recipe.train
    data_name, data_kwargs = data_options(recipe)
    batch_size = check_batch_size(recipe.data.get("batch_size", 32))
    from modelzoo.data.registry import dataset_kwargs

    if "batch_size" in dataset_kwargs(data_name):
        # Stream layouts (truncated BPTT) are cut for the batch size the trainer will use.
        # Under torchrun the rows of the stream are the global batch, split across processes.
        data_kwargs["batch_size"] = batch_size * int(os.environ.get("WORLD_SIZE", "1"))
    data = build_data(data_name, **data_kwargs)
    if cfg.dry_run:
        size = batch_size * DRY_RUN_BATCHES
        data = DataBundle(
            _tiny(data.train, size),
            _tiny(data.val, size),
            _tiny(data.test, size),
            data.info,
            data.collate_fn,
            data.name,
            data.kwargs,
        )
        cfg.max_steps = min(cfg.max_steps or DRY_RUN_BATCHES, DRY_RUN_BATCHES)
        cfg.progress = False
    seed_everything(cfg.seed)  # model initialization is part of the run
    name, kwargs = model_kwargs(recipe, data.info)
    model = create(name, **kwargs)
    task = build_task(recipe, model, data.info)
    trainer = Trainer(
        task,
        cfg,
        run_dir=run_dir,
        recipe=recipe.to_dict(),
        batch_size=batch_size,
        collate_fn=data.collate_fn,
        shuffle=data.info.get("shuffle", True),
    )
    return trainer, data


def _finish(trainer: Trainer, data: DataBundle, run_dir: Path | None) -> RunResult:
    test = trainer.evaluate(data.test) if data.test is not None else {}
    if trainer.run is not None and test:
        trainer.run.write_json("test_metrics.json", test)
    return RunResult(run_dir, trainer, data, trainer.last_metrics, test)


def train_recipe(recipe: Recipe, run_dir: str | Path | None = None) -> RunResult:
    """Train a recipe from scratch; evaluates on the test split at the end."""
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None and (run_dir / "checkpoints" / "last.ckpt").exists():
        raise ConfigError(
            f"{run_dir} already holds a run; continue it with `modelzoo resume {run_dir}` or "
            "choose another --run-dir"
        )
    if is_rl_recipe(recipe):
        from modelzoo.train.rl.runner import train_rl

        return train_rl(recipe, run_dir)
    trainer, data = build_run(recipe, run_dir)
    trainer.fit(data.train, data.val)
    return _finish(trainer, data, run_dir)


def _run_recipe(run_dir: Path, overrides: list[str] | None, command: str) -> Recipe:
    """The recipe in ``run_dir/config.yaml`` with ``overrides``; a ConfigError saying
    precisely what is missing (and which override supplies it) when the run was started
    from Python with parts the recipe could not record."""
    import yaml

    from modelzoo.config import apply_overrides, parse_overrides, recipe_from_dict
    from modelzoo.train.run import MISSING_PREFIX

    config = run_dir / "config.yaml"
    if not config.is_file():
        raise CheckpointError(f"{run_dir} has no config.yaml; is it a modelzoo run directory?")
    text = config.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{config} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{config} must hold a mapping with sections model, data, task, train")
    raw = apply_overrides(raw, parse_overrides(overrides or []))
    notes = {
        line[len(MISSING_PREFIX) :].split(":", 1)[0]: line[len(MISSING_PREFIX) :]
        for line in text.splitlines()
        if line.startswith(MISSING_PREFIX)
    }
    for section, example in (
        ("model", "model.name=resnet20 model.num_classes=10"),
        ("data", "data.name=digits data.img_size=16"),
        ("task", "task.name=classification"),
    ):
        values = raw.get(section)
        if isinstance(values, dict) and "name" in values:
            continue
        if section == "task" and section not in notes:
            continue  # a task may come from the data's info (build_task)
        why = notes.get(section, f"{section}: config.yaml has no {section}.name")
        raise ConfigError(
            f"{config} does not say which {section} the run used: {why.split(': ', 1)[-1]}. "
            f"Supply it on the command line, e.g. `modelzoo {command} {run_dir} {example}` "
            f"(overrides are merged into config.yaml's sections)."
        )
    return recipe_from_dict(raw)


def resume_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    checkpoint: str | Path | None = None,
) -> RunResult:
    """Continue a run exactly from a checkpoint (overrides may raise train.max_steps).

    Args:
        run_dir: the run directory.
        overrides: ``section.key=value`` changes to its recipe.
        checkpoint: continue from this file instead of ``checkpoints/last.ckpt`` (e.g. an
            earlier ``step-<N>.ckpt`` when last.ckpt is damaged); metrics.csv rows after
            its step are dropped.
    """
    run_dir = Path(run_dir)
    recipe = _run_recipe(run_dir, overrides, "resume")
    if checkpoint is None:
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
        if not checkpoint.is_file():
            raise CheckpointError(
                f"{run_dir} has no checkpoints/last.ckpt to resume from; pick another "
                "checkpoint with --checkpoint PATH"
            )
    else:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise CheckpointError(f"no checkpoint at {checkpoint}")
    if is_rl_recipe(recipe):
        from modelzoo.train.rl.runner import resume_rl

        return resume_rl(recipe, run_dir, checkpoint)
    trainer, data = build_run(recipe, run_dir)
    trainer.fit(data.train, data.val, resume_from=checkpoint)
    return _finish(trainer, data, run_dir)


def evaluate_run(
    target: str | Path, checkpoint: str | Path | None = None, overrides: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Evaluate a run directory (its best or last checkpoint) or a recipe with a checkpoint.

    The checkpoint's evaluation weights are used: the EMA copy for runs with
    ``train.ema_decay`` (the weights that chose best.ckpt), the training weights otherwise.
    """
    target = Path(target)
    if target.is_dir():
        recipe = _run_recipe(target, overrides, "evaluate")
        if checkpoint is None:
            best = target / "checkpoints" / "best.ckpt"
            checkpoint = best if best.is_file() else target / "checkpoints" / "last.ckpt"
    else:
        recipe = load_recipe(target, overrides)
        if checkpoint is None:
            raise ConfigError("evaluating a recipe needs --checkpoint PATH")
    if is_rl_recipe(recipe):  # {"mean_return", "std_return", "episodes"}
        from modelzoo.train.rl.runner import evaluate_rl

        return evaluate_rl(recipe, checkpoint)
    recipe.train.progress = False
    trainer, data = build_run(recipe, None)
    from modelzoo.train.checkpoint import evaluation_weights, load_checkpoint

    state = load_checkpoint(checkpoint, map_location=trainer.device)
    try:
        trainer.model.load_state_dict(evaluation_weights(state))
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint} does not match the recipe's model: {err}") from err
    results = {}
    for split in ("val", "test"):
        dataset = getattr(data, split)
        if dataset is not None:
            results[split] = trainer.evaluate(dataset, use_ema=False)
    return results
