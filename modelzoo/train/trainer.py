"""The trainer: one explicit loop for every family.

    trainer = Trainer(ClassificationTask(model), TrainConfig(epochs=10), run_dir="runs/x")
    trainer.fit(train_data, val_data)

Per optimizer step: for each optimizer the task names (one, or a GAN's two),
forward and backward over ``grad_accum`` micro-batches (DDP gradient sync only
on the last), unscale, clip, step, update the EMA, then advance the schedule —
unless fp16 overflow skipped the step. Then log, evaluate and checkpoint when due;
everything the run writes goes through :class:`modelzoo.train.run.RunDir`.

With ``train.ema_decay`` the run evaluates the EMA of the weights, and its
checkpoints hold that EMA as ``"model"`` (see :mod:`modelzoo.train.checkpoint`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from modelzoo.config import TrainConfig, check_batch_size
from modelzoo.errors import CheckpointError, ConfigError, NonFiniteLossError
from modelzoo.layers.checkpointing import enable_grad_checkpointing
from modelzoo.train.checkpoint import (
    CHECKPOINT_VERSION,
    atomic_save,
    load_checkpoint,
    rng_state,
    set_rng_state,
    training_weights,
)
from modelzoo.train.describe import describe_run
from modelzoo.train.distributed import DistributedContext
from modelzoo.train.optim import (
    LRSchedule,
    ModelEMA,
    build_optimizer,
    build_scheduler,
    load_optimizer_state,
    optimizer_param_names,
    v1_group_names,
)
from modelzoo.train.precision import Precision
from modelzoo.train.run import RunDir, progress_bar
from modelzoo.train.sampler import ResumableBatchSampler
from modelzoo.train.tasks.base import Task, Totals, batch_size_of

__all__ = ["Trainer", "resolve_device", "seed_everything", "move_to", "ema_gap"]

_logger = logging.getLogger(__name__)


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` under torchrun means this process's GPU."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device={spec!r} but CUDA is not available here; use device=cpu or auto"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def move_to(batch: Any, device: torch.device, precision: Precision | None = None) -> Any:
    """Move every tensor in a batch to ``device`` (and cast inputs for bf16-true)."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return precision.convert_input(batch) if precision is not None else batch
    if isinstance(batch, dict):
        return {k: move_to(v, device, precision) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device, precision) for v in batch)
    return batch


class _TensorBatches(Dataset):
    """A TensorDataset read a whole batch at a time: one gather per tensor instead of
    fetching samples one by one and stacking them (what DataLoader does otherwise)."""

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        return [t[index] for t in self.tensors]

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [t[index] for t in self.tensors]


def _whole_batch(batch: Any) -> Any:
    return batch


def _loader_parts(dataset: Dataset, collate_fn: Any) -> tuple[Dataset, Any]:
    """The dataset and collate function a DataLoader should use: the batched fast path for
    in-memory tensors (same batches, bit for bit), the dataset as it is otherwise."""
    if collate_fn is not None:
        return dataset, collate_fn
    if isinstance(dataset, Subset) and isinstance(dataset.dataset, TensorDataset):
        index = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return _TensorBatches(tuple(t[index] for t in dataset.dataset.tensors)), _whole_batch
    if isinstance(dataset, TensorDataset):
        return _TensorBatches(dataset.tensors), _whole_batch
    return dataset, None


class Trainer:
    """Train a task: devices, precision, optimizers, accumulation, checkpoints, logs.

    Args:
        task: what to compute (see :class:`modelzoo.train.tasks.Task`).
        config: a :class:`TrainConfig` or a mapping of its fields.
        run_dir: where config.yaml, metrics.csv, checkpoints/ and plots/ go (see
            :class:`modelzoo.train.run.RunDir`); None writes nothing.
        recipe: the resolved recipe, written to config.yaml and stored in every checkpoint.
            Without it the trainer writes the recipe itself: the model's name and keywords
            from :func:`modelzoo.create`, the data's from :func:`modelzoo.data.build_data`,
            the task's registered name, and ``config``, so that ``modelzoo evaluate`` and
            ``modelzoo resume`` work on the run directory; what it cannot know (a custom
            dataset) is named at the top of config.yaml with the override that supplies it.
        batch_size: samples per process per micro-batch.
        collate_fn: DataLoader collate function (default: torch's).
        callbacks: objects with optional ``on_epoch_start(trainer, epoch)`` and
            ``on_step(trainer, step)`` (called before each optimizer step with the number of
            steps already taken), e.g. ``modelzoo.transfer.GradualUnfreeze``.
        shuffle: reshuffle the training data each epoch (off for contiguous text streams).
    """

    def __init__(
        self,
        task: Task,
        config: TrainConfig | dict[str, Any] | None = None,
        *,
        run_dir: str | Path | None = None,
        recipe: dict[str, Any] | None = None,
        batch_size: int = 32,
        collate_fn: Any = None,
        shuffle: bool = True,
        callbacks: list[Any] | None = None,
    ) -> None:
        if config is None:
            config = TrainConfig()
        elif isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        self.config = config
        self.task = task
        if config.grad_checkpointing:  # before any setup: ConfigError for a model without it
            enable_grad_checkpointing(task.model)
        self._recipe_given = recipe is not None
        self._recipe = recipe
        self.recipe_missing: list[str] = []  # what the recipe could not record
        self.batch_size = check_batch_size(batch_size, "batch_size")
        self.collate_fn = collate_fn
        self.shuffle = shuffle
        self.callbacks = list(callbacks or [])
        requested = resolve_device(config.device) if config.device != "auto" else None
        self.dist = DistributedContext.from_env((requested or resolve_device("auto")).type)
        self.device = resolve_device(config.device, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True  # TF32 on Ampere and newer
            torch.backends.cudnn.allow_tf32 = True
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run = (
            RunDir(self.run_dir, is_main=self.dist.is_main, keep_last=config.keep_last)
            if self.run_dir is not None
            else None
        )
        self.precision = Precision(config.precision, self.device)

        model = task.model.to(self.device)
        model = self.precision.convert_module(model)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        task.model = model
        self._wrappers = task.wrap(lambda m: self.dist.wrap(m, self.device, config.fsdp))
        # DDP's no_sync on all but the last micro-batch; nothing to enter otherwise.
        self._sync_wrappers = [w for w in self._wrappers if hasattr(w, "no_sync")]
        if config.compile:
            task._forward_model = torch.compile(task.net)

        self.optimizers = {
            name: build_optimizer(task.parameters(name), config, model=task.model)
            for name in task.optimizer_names
        }
        self.schedulers: dict[str, LRSchedule] = {}
        self.ema = (
            ModelEMA(task.model, config.ema_decay, warmup=config.ema_warmup)
            if config.ema_decay
            else None
        )
        # On the CPU in fp32 a batch is already where it must be: skip the walk over it.
        self._move_inputs = self.device.type != "cpu" or config.precision == "bf16-true"
        # Without autocast and DDP's no_sync there is nothing to enter around the forward.
        self._bare_forward = self.precision.autocast_dtype is None and not self._sync_wrappers

        # Loop position; all of it goes into checkpoints.
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.bad_steps = 0
        self.best_metric: float | None = None
        self.evals_without_improvement = 0
        self.last_metrics: dict[str, float] = {}
        self.step_losses: list[dict[str, float]] = []  # every step's losses, for tests and tools

    # --- public API ------------------------------------------------------------------

    @property
    def model(self) -> nn.Module:
        return self.task.model

    @property
    def recipe(self) -> dict[str, Any]:
        """The run's recipe: as given, as :meth:`describe_run` found it, or the train section."""
        if self._recipe is None:
            return {"train": self.config.to_dict()}
        return self._recipe

    @recipe.setter
    def recipe(self, value: dict[str, Any]) -> None:
        self._recipe = value

    def fit(
        self,
        train_data: Dataset,
        val_data: Dataset | None = None,
        *,
        resume_from: str | Path | None = None,
    ) -> dict[str, float]:
        """Train until ``epochs`` are done, ``max_steps`` is reached or early stopping fires.

        Args:
            train_data: a map-style dataset.
            val_data: evaluated each epoch (or every ``eval_every`` steps).
            resume_from: a checkpoint to continue from exactly.

        Returns:
            The last evaluation metrics (empty without ``val_data``).
        """
        cfg = self.config
        sampler = ResumableBatchSampler(
            len(train_data),
            self.batch_size,
            shuffle=self.shuffle,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        batches_per_epoch = len(sampler)
        total_steps = cfg.epochs * math.ceil(batches_per_epoch / cfg.grad_accum)
        for name, optimizer in self.optimizers.items():
            self.schedulers[name] = build_scheduler(optimizer, cfg, total_steps)
        if self.run is not None and not self._recipe_given:
            self.recipe, self.recipe_missing = self.describe_run(train_data)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        else:
            seed_everything(cfg.seed + self.dist.rank)
        if self.run is not None:
            self.run.open(
                self.recipe,
                step=self.step,
                tensorboard=cfg.tensorboard,
                missing=self.recipe_missing,
            )
        batches = self._batch_source(train_data, sampler)
        accum = cfg.grad_accum
        stop = self._done(total_steps)
        progress = self._progress(total_steps)
        try:
            while not stop and self.epoch < cfg.epochs:
                sampler.set_epoch(self.epoch)
                sampler.position = self.batch_in_epoch
                if self.batch_in_epoch == 0:
                    self.task.on_epoch_start(self.epoch)
                if self.callbacks:
                    self._callback("on_epoch_start", self.epoch)
                micro: list[Any] = []
                for batch in batches():
                    micro.append(batch)
                    self.batch_in_epoch += 1
                    if len(micro) < accum and self.batch_in_epoch < batches_per_epoch:
                        continue
                    if self.callbacks:
                        self._callback("on_step", self.step)
                    losses = self._optimizer_step(micro)
                    epoch_done = self.batch_in_epoch >= batches_per_epoch
                    if epoch_done:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    stop = self._after_step(losses, val_data, epoch_done, total_steps)
                    if progress is not None:
                        samples = sum(batch_size_of(b) for b in micro) * self.dist.world_size
                        progress.update(1, samples=samples, **losses)
                    micro = []
                    if stop or epoch_done:
                        break
        finally:
            if progress is not None:
                progress.close()
        self._finish()
        return self.last_metrics

    @torch.no_grad()
    def evaluate(self, data: Dataset, *, use_ema: bool = True) -> dict[str, float]:
        """Metrics of the task on ``data``.

        Args:
            data: a map-style dataset.
            use_ema: with ``train.ema_decay`` set, evaluate the EMA copy (what the run's
                checkpoints hold as ``"model"``); False evaluates the training weights.
        """
        model = self.task.model
        ema_active = use_ema and self.ema is not None
        if ema_active:
            saved = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(self.ema.state_dict())
        was_training = model.training
        model.eval()
        sampler = ResumableBatchSampler(
            len(data),
            self.batch_size,
            shuffle=False,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        dataset, collate_fn = _loader_parts(data, self.collate_fn)
        # Its own generator: evaluating must not draw from the global RNG that training uses.
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=collate_fn, generator=torch.Generator()
        )
        totals: Totals = {}
        try:
            for batch in loader:
                batch = move_to(batch, self.device, self.precision)
                with self.precision.autocast():
                    for key, (value, count) in self.task.validation_step(batch).items():
                        s, c = totals.get(key, (0.0, 0))
                        totals[key] = (s + float(value), c + int(count))
        finally:
            model.train(was_training)
            if ema_active:
                model.load_state_dict(saved)
        keys = sorted(totals)
        sums = self.dist.all_reduce_sum([totals[k][0] for k in keys], self.device)
        counts = self.dist.all_reduce_sum([float(totals[k][1]) for k in keys], self.device)
        reduced = {k: (s, int(c)) for k, s, c in zip(keys, sums, counts)}
        return self.task.compute_metrics(reduced)

    @torch.no_grad()
    def predict(self, data: Dataset) -> list[Any]:
        """The task's predictions for every batch of ``data``, in order."""
        model = self.task.model
        was_training = model.training
        model.eval()
        dataset, collate_fn = _loader_parts(data, self.collate_fn)
        loader = DataLoader(
            dataset, batch_size=self.batch_size, collate_fn=collate_fn, generator=torch.Generator()
        )
        try:
            outputs = []
            for batch in loader:
                with self.precision.autocast():
                    outputs.append(
                        self.task.predict_step(move_to(batch, self.device, self.precision))
                    )
            return outputs
        finally:
            model.train(was_training)

    def describe_run(self, train_data: Dataset | None = None) -> tuple[dict[str, Any], list[str]]:
        """The recipe that rebuilds this run, as ``modelzoo train`` would write it, and what
        it cannot record (see :func:`modelzoo.train.describe.describe_run`)."""
        return describe_run(self.task, self.config, self.batch_size, train_data)

    # --- checkpoints -----------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything an exact resume needs, as checkpoint-safe values.

        ``"model"`` holds the weights the run evaluates (the EMA copy when there is one),
        ``"training_model"`` the raw weights of an EMA run; see
        :mod:`modelzoo.train.checkpoint`.
        """
        training = self._model_state_dict()
        state = {
            "version": CHECKPOINT_VERSION,
            "model": self.ema.state_dict() if self.ema is not None else training,
            "model_weights": "ema" if self.ema is not None else "training",
            "model_name": getattr(self.task.model, "model_name", None),
            "optimizers": {k: self._optimizer_state_dict(o) for k, o in self.optimizers.items()},
            "optimizer_params": {
                k: optimizer_param_names(o, self.task.model) for k, o in self.optimizers.items()
            },
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "precision": self.precision.state_dict(),
            "ema": self.ema.state() if self.ema is not None else None,
            "task": self.task.state_dict(),
            "rng": rng_state(),
            "loop": {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "bad_steps": self.bad_steps,
                "best_metric": self.best_metric,
                "evals_without_improvement": self.evals_without_improvement,
                "world_size": self.dist.world_size,
            },
            "config": self.recipe,
        }
        if self.ema is not None:
            state["training_model"] = training
        return state

    def _finite_checkpoint_state(self) -> dict[str, Any]:
        bad = [n for n, p in self.task.model.named_parameters() if not torch.isfinite(p).all()]
        if bad:
            raise NonFiniteLossError(
                f"step {self.step}: parameters {bad[:3]} are not finite; refusing to write a "
                f"checkpoint. Lower train.lr, set train.clip_grad_norm, or use precision=32."
            )
        return self.checkpoint_state()  # every rank joins FSDP's gathers

    def save_checkpoint(self, path: str | Path) -> Path | None:
        """Write a checkpoint atomically (rank 0 only); refuses non-finite parameters."""
        state = self._finite_checkpoint_state()
        if not self.dist.is_main:
            return None
        return atomic_save(state, path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore model, optimizers, schedules, scaler, EMA, RNG states and loop position.

        Reads checkpoints of every format version (see :mod:`modelzoo.train.checkpoint`).
        """
        state = load_checkpoint(path, map_location=self.device)
        loop = state["loop"]
        if loop.get("world_size", 1) != self.dist.world_size:
            raise CheckpointError(
                f"{path} was written by {loop['world_size']} processes; resume with the same "
                f"number (now {self.dist.world_size}) for an exact continuation"
            )
        try:
            self._load_model_state_dict(training_weights(state))
        except RuntimeError as err:
            raise CheckpointError(f"{path} does not match this model: {err}") from err
        saved_names = state.get("optimizer_params")
        regrouped: dict[str, bool] = {}
        for name, optimizer in self.optimizers.items():
            if self._sharded:  # FQN-keyed state: torch's own loader maps it
                self._load_optimizer_state_dict(optimizer, state["optimizers"][name])
                regrouped[name] = False
                continue
            saved_state = state["optimizers"][name]
            if saved_names is not None:
                saved = saved_names.get(name)
            else:  # version 1 recorded no names; its layout was v1_group_names' if sizes agree
                old = v1_group_names(self.task.parameters(name))
                sizes = [len(g["params"]) for g in saved_state["param_groups"]]
                saved = old if [len(g) for g in old] == sizes else None
            current = optimizer_param_names(optimizer, self.task.model)
            regrouped[name] = load_optimizer_state(
                optimizer, saved_state, current, saved, str(path)
            )
        for name, scheduler in self.schedulers.items():
            if name in state["schedulers"]:
                scheduler.load_state_dict(
                    state["schedulers"][name], keep_base_lrs=regrouped.get(name, False)
                )
        self.precision.load_state_dict(state["precision"])
        if self.ema is not None:
            self._load_ema(state)
        self.task.load_state_dict(state.get("task") or {})
        set_rng_state(state["rng"])
        self.step = loop["step"]
        self.epoch = loop["epoch"]
        self.batch_in_epoch = loop["batch_in_epoch"]
        self.bad_steps = loop["bad_steps"]
        self.best_metric = loop["best_metric"]
        self.evals_without_improvement = loop["evals_without_improvement"]

    def _load_ema(self, state: dict[str, Any]) -> None:
        version = int(state.get("version", 1))
        loop = state["loop"]
        if version >= 2 and state.get("model_weights") == "ema":
            self.ema.load_state_dict(state["model"])
            self.ema.load_state(state.get("ema") or {})
        elif version < 2 and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
            # Version 1 did not count updates: one per optimizer step that was not skipped.
            self.ema.updates = int(loop["step"]) - int(loop.get("bad_steps", 0))
        else:  # the run had no EMA until now: start one from the restored weights
            self.ema.load_state_dict(self.task.model.state_dict())
            self.ema.updates = 0

    # --- the step ----------------------------------------------------------------------

    def _batch_source(self, data: Dataset, sampler: ResumableBatchSampler) -> Any:
        """A function giving the rest of the current epoch's batches, from the sampler's
        position. In-memory tensors on the CPU are sliced directly (the DataLoader would
        only add its per-batch bookkeeping: same batches, bit for bit)."""
        dataset, collate_fn = _loader_parts(data, self.collate_fn)
        if (
            isinstance(dataset, _TensorBatches)
            and self.config.num_workers == 0
            and self.device.type == "cpu"
        ):
            fetch = dataset.__getitems__
            return lambda: map(fetch, sampler)
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            collate_fn=collate_fn,
            pin_memory=self.device.type == "cuda",
            # Its own generator: creating an iterator must not draw from the global RNG,
            # or a resumed run's dropout masks would drift from the uninterrupted run's.
            generator=torch.Generator().manual_seed(self.config.seed),
        )
        return lambda: iter(loader)

    def _optimizer_step(self, micro: list[Any]) -> dict[str, float]:
        cfg = self.config
        if self._move_inputs:
            batches = [move_to(b, self.device, self.precision) for b in micro]
        else:
            batches = micro
        count = len(batches)
        shares = None
        if count > 1:
            weights = [batch_size_of(b) for b in batches]
            total = sum(weights)
            # Weight each micro-batch by its share of samples: the sum is the big batch's mean.
            shares = [w / total for w in weights]
        logged: dict[str, float] = {}
        multi = len(self.task.optimizer_names) > 1
        model = self.task.model
        if not model.training:  # Module.train() walks every submodule: not per step
            model.train()
        finite = True
        for name in self.task.schedule():
            optimizer = self.optimizers[name]
            optimizer.zero_grad(set_to_none=True)
            sums: dict[str, float] = {}
            for i, batch in enumerate(batches):
                if self._bare_forward:  # fp32 in one process: no context to enter
                    out = self.task.training_step(batch, name)
                else:
                    with self._no_sync(i < count - 1), self.precision.autocast():
                        out = self.task.training_step(batch, name)
                # One read-back per value serves both the finiteness check and the log.
                values = {key: value.item() for key, value in out.items()}
                if not math.isfinite(values["loss"]):
                    finite = False
                    break
                if shares is None:
                    self.precision.backward(out["loss"])
                    sums = values
                    continue
                share = shares[i]
                self.precision.backward(out["loss"] * share)
                for key, value in values.items():
                    sums[key] = sums.get(key, 0.0) + value * share
            if not finite:
                optimizer.zero_grad(set_to_none=True)
                break
            if multi:
                logged.update({f"{name}_{key}": value for key, value in sums.items()})
            else:
                logged.update(sums)
            if cfg.clip_grad_norm is not None:
                self.precision.unscale(optimizer)
                params = [p for group in optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
            if self.precision.step(optimizer):
                self.schedulers[name].step()  # not advanced on an fp16-skipped step
        self.step += 1
        if not finite:
            self.bad_steps += 1
            if self.bad_steps > cfg.max_bad_steps:
                raise NonFiniteLossError(
                    f"the loss became non-finite at step {self.step} (epoch {self.epoch}); "
                    f"{self.bad_steps} bad step(s) so far, "
                    f"train.max_bad_steps={cfg.max_bad_steps}. "
                    "Lower train.lr, set train.clip_grad_norm, check the data for NaN, or allow "
                    "a few skips with train.max_bad_steps."
                )
            _logger.warning("step %d: non-finite loss, update skipped", self.step)
            logged["skipped"] = 1.0
        elif self.ema is not None:
            self.ema.update(model)
        self.step_losses.append(logged)
        return logged

    def _callback(self, hook: str, value: int) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(self, value)

    def _no_sync(self, skip_sync: bool) -> contextlib.AbstractContextManager:
        if not (skip_sync and self._sync_wrappers):
            return _NO_CONTEXT
        stack = contextlib.ExitStack()
        for wrapper in self._sync_wrappers:
            stack.enter_context(wrapper.no_sync())
        return stack

    def _after_step(
        self, losses: dict[str, float], val_data: Dataset | None, epoch_done: bool, total: int
    ) -> bool:
        cfg = self.config
        stop = self._done(total)
        row: dict[str, Any] = {}
        if self.step % cfg.log_every == 0 or stop or epoch_done:
            row = {"step": self.step, "epoch": self.epoch - epoch_done, **losses}
            row["lr"] = next(iter(self.optimizers.values())).param_groups[0]["lr"]
            if self.precision.scaler is not None:
                row["skipped_steps"] = self.precision.skipped_steps
        due = self.step % cfg.eval_every == 0 if cfg.eval_every else epoch_done
        improved = False
        if val_data is not None and due:
            metrics = self.evaluate(val_data)
            self.last_metrics = metrics
            row = row or {"step": self.step, "epoch": self.epoch - epoch_done}
            row.update({f"val_{k}": v for k, v in metrics.items()})
            if self.ema is not None:
                # The training weights too, to see (and warn) when the average lags far behind.
                raw = self.evaluate(val_data, use_ema=False)
                row.update({f"val_training_{k}": v for k, v in raw.items()})
                self._check_ema(metrics, raw)
            improved = self._track_best(metrics)
            if (
                cfg.early_stopping_patience is not None
                and self.evals_without_improvement >= cfg.early_stopping_patience
            ):
                _logger.info("early stopping at step %d", self.step)
                stop = True
        if self.run is not None:
            self.run.end_step(
                row,
                self._finite_checkpoint_state,
                step=self.step,
                checkpoint_every=cfg.checkpoint_every,
                best=improved,
                last=stop or (epoch_done and self.epoch >= cfg.epochs),
            )
        return stop

    def _check_ema(self, ema: dict[str, float], raw: dict[str, float]) -> None:
        """Warn when the EMA copy evaluates far worse than the training weights."""
        if not self.dist.is_main:
            return
        gap = ema_gap(ema, raw, self.config.monitor or self.task.monitor, self.task.monitor_mode)
        if gap is None:
            return
        key, ema_value, raw_value = gap
        decay = self.config.ema_decay
        warmup = "" if self.ema.warmup else ", set train.ema_warmup=true,"
        _logger.warning(
            "step %d: the EMA of the weights scores val_%s=%.4g, far worse than the training "
            "weights' %.4g. Evaluation, best.ckpt and the checkpoints' \"model\" use the EMA "
            "(train.ema_decay=%s, %d updates: it averages about the last %.0f steps). Lower "
            "train.ema_decay (e.g. %s)%s or train longer; the training weights are in each "
            'checkpoint under "training_model".',
            self.step,
            key,
            ema_value,
            raw_value,
            decay,
            self.ema.updates,
            self.ema.averaged_steps(),
            _lower_decay(decay),
            warmup,
        )

    def _done(self, total_steps: int) -> bool:
        cfg = self.config
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return True
        return self.step >= total_steps

    def _track_best(self, metrics: dict[str, float]) -> bool:
        key = self.config.monitor or self.task.monitor
        if key not in metrics:
            raise ConfigError(
                f"train.monitor={key!r} is not among the evaluation metrics {sorted(metrics)}"
            )
        value = metrics[key]
        better = self.best_metric is None or (
            value < self.best_metric
            if self.task.monitor_mode == "min"
            else value > self.best_metric
        )
        if better:
            self.best_metric = value
            self.evals_without_improvement = 0
        else:
            self.evals_without_improvement += 1
        return better

    # --- logs ----------------------------------------------------------------------------

    def _progress(self, total_steps: int) -> Any:
        if not (self.config.progress and self.dist.is_main):
            return None
        total = min(total_steps, self.config.max_steps or total_steps)
        return progress_bar(total, initial=min(self.step, total), unit="step")

    def _finish(self) -> None:
        if self.run is None:
            return
        self.run.close()
        if not self.dist.is_main or not self.config.plots:
            return
        self.run.plot_metrics()
        self.task.plot(self.run.path / "plots", self.step)

    # Under FSDP2 each process holds a shard; checkpoints hold the full, unsharded
    # tensors (gathered by every process, written by rank 0), so they load anywhere.

    @property
    def _sharded(self) -> bool:
        return self.config.fsdp and self.dist.enabled

    @staticmethod
    def _full_options(loading: bool = False) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        if loading:
            return StateDictOptions(full_state_dict=True)
        return StateDictOptions(full_state_dict=True, cpu_offload=True)

    def _model_state_dict(self) -> dict[str, torch.Tensor]:
        if not self._sharded:
            return self.task.model.state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.task.model, options=self._full_options())

    def _load_model_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if not self._sharded:
            self.task.model.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_model_state_dict

        set_model_state_dict(self.task.model, state, options=self._full_options(loading=True))

    def _optimizer_state_dict(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        if not self._sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(self.task.model, optimizer, options=self._full_options())

    def _load_optimizer_state_dict(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        if not self._sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(
            self.task.model, optimizer, state, options=self._full_options(loading=True)
        )


_NO_CONTEXT = contextlib.nullcontext()
# How far the EMA may fall behind the training weights before a warning: 5 points of a
# score in [0, 1] such as accuracy (5% of larger scores), or half as much again of a loss.
EMA_GAP_SCORE = 0.05
EMA_GAP_LOSS = 1.5


def ema_gap(
    ema: dict[str, float], raw: dict[str, float], monitor: str, mode: str
) -> tuple[str, float, float] | None:
    """The metric on which the EMA copy is far worse than the training weights, if any.

    Args:
        ema: metrics of the EMA copy.
        raw: metrics of the training weights, on the same data.
        monitor: the metric that chooses best.ckpt.
        mode: ``"max"`` or ``"min"``: whether larger ``monitor`` values are better.

    Returns:
        ``(metric, ema value, training value)``, or None when the EMA is close enough.
    """
    for key in dict.fromkeys([monitor, "accuracy", "loss"]):
        if key not in ema or key not in raw:
            continue
        e, r = float(ema[key]), float(raw[key])
        if not (math.isfinite(e) and math.isfinite(r)):
            continue
        higher_is_better = mode == "max" if key == monitor else key == "accuracy"
        if higher_is_better and r - e > EMA_GAP_SCORE * max(1.0, abs(r)):
            return key, e, r
        if not higher_is_better and r >= 0 and e > EMA_GAP_LOSS * r + EMA_GAP_SCORE:
            return key, e, r
    return None


def _lower_decay(decay: float | None) -> str:
    """A decay averaging over ten times fewer steps (0.999 -> 0.99)."""
    if not decay:
        return "0.99"
    return f"{1 - 10 * (1 - decay):.4g}" if decay > 0.9 else f"{decay / 2:.2g}"
