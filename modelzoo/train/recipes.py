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

from modelzoo.config import Recipe, check_keys, load_recipe
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


def _model_kwargs(recipe: Recipe, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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


def build_run(recipe: Recipe, run_dir: str | Path | None = None) -> tuple[Trainer, DataBundle]:
    """Data, model, task and trainer for a recipe (nothing trained yet)."""
    cfg = recipe.train
    data_kwargs = dict(recipe.data)
    data_name = data_kwargs.pop("name")
    batch_size = int(data_kwargs.pop("batch_size", 32))
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
        )
        cfg.max_steps = min(cfg.max_steps or DRY_RUN_BATCHES, DRY_RUN_BATCHES)
        cfg.progress = False
    seed_everything(cfg.seed)  # model initialization is part of the run
    name, kwargs = _model_kwargs(recipe, data.info)
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
    if run_dir is not None and trainer.dist.is_main and test:
        import json

        (run_dir / "test_metrics.json").write_text(json.dumps(test, indent=2) + "\n")
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


def _run_recipe(run_dir: Path, overrides: list[str] | None) -> Recipe:
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise CheckpointError(f"{run_dir} has no config.yaml; is it a modelzoo run directory?")
    return load_recipe(config, overrides)


def resume_run(run_dir: str | Path, overrides: list[str] | None = None) -> RunResult:
    """Continue a run exactly from its last checkpoint (overrides may raise train.max_steps)."""
    run_dir = Path(run_dir)
    recipe = _run_recipe(run_dir, overrides)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise CheckpointError(f"{run_dir} has no checkpoints/last.ckpt to resume from")
    if is_rl_recipe(recipe):
        from modelzoo.train.rl.runner import resume_rl

        return resume_rl(recipe, run_dir, checkpoint)
    trainer, data = build_run(recipe, run_dir)
    trainer.fit(data.train, data.val, resume_from=checkpoint)
    return _finish(trainer, data, run_dir)


def evaluate_run(
    target: str | Path, checkpoint: str | Path | None = None, overrides: list[str] | None = None
) -> dict[str, dict[str, float]]:
    """Evaluate a run directory (its best or last checkpoint) or a recipe with a checkpoint."""
    target = Path(target)
    if target.is_dir():
        recipe = _run_recipe(target, overrides)
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
    from modelzoo.train.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint, map_location=trainer.device)
    try:
        trainer.model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{checkpoint} does not match the recipe's model: {err}") from err
    if trainer.ema is not None and state.get("ema") is not None:
        trainer.ema.load_state_dict(state["ema"])
    results = {}
    for split in ("val", "test"):
        dataset = getattr(data, split)
        if dataset is not None:
            results[split] = trainer.evaluate(dataset)
    return results
