"""Optimizers, learning-rate schedules and the weight EMA."""

from __future__ import annotations

import bisect
import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from modelzoo.config import TrainConfig
from modelzoo.errors import CheckpointError, ConfigError
from modelzoo.train.param_groups import param_groups

__all__ = [
    "build_optimizer",
    "build_scheduler",
    "LRSchedule",
    "ModelEMA",
    "optimizer_param_names",
    "load_optimizer_state",
    "v1_group_names",
]

_logger = logging.getLogger(__name__)


def build_optimizer(
    named_params: Iterable[tuple[str, nn.Parameter]],
    config: TrainConfig,
    *,
    model: nn.Module | None = None,
) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over groups from :func:`param_groups`.

    Args:
        named_params: the parameters this optimizer updates (a GAN's generator, say).
        config: lr, weight_decay, layer_decay, optimizer and its settings.
        model: the whole model, which ``layer_decay`` needs to tell layers apart and
            whose ``no_weight_decay()`` names are honoured; without it the groups come
            from ``named_params`` alone.
    """
    named = list(named_params)
    if model is None:
        groups = param_groups(
            named, config.lr, weight_decay=config.weight_decay, layer_decay=config.layer_decay
        )
    else:
        wanted = {id(p) for _, p in named}
        groups = []
        for group in param_groups(
            model, config.lr, weight_decay=config.weight_decay, layer_decay=config.layer_decay
        ):
            params = [p for p in group["params"] if id(p) in wanted]
            if params:
                groups.append({**group, "params": params})
        covered = {id(p) for g in groups for p in g["params"]}
        rest = [(n, p) for n, p in named if id(p) not in covered]  # a task's own parameters
        if rest:
            groups += param_groups(rest, config.lr, weight_decay=config.weight_decay)
    if config.weight_decay_all:
        # Every parameter decays, biases and norm scales too, as Caffe and Torch recipes of
        # the ResNet era did. The groups stay as they are, so a run resumes either way.
        for group in groups:
            group["weight_decay"] = config.weight_decay
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise ConfigError("the model has no trainable parameters; unfreeze some before training")
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=config.betas)


class LRSchedule:
    """A learning-rate factor per optimizer step, applied to every group's base lr.

    Computes exactly what ``torch.optim.lr_scheduler.LambdaLR`` computes (``lr =
    base_lr * factor(step)``) and saves a compatible state, at a fraction of its cost
    per step: the groups are only written when the factor changes (never, for a
    constant schedule), which matters for small models where the step is microseconds.

    Args:
        optimizer: its groups' current ``lr`` become the base learning rates.
        factor: the multiplier of step ``t`` (0 before the first optimizer step).
        constant: ``factor`` is 1 at every step (a constant schedule without warm-up).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: Callable[[int], float],
        *,
        constant: bool = False,
    ) -> None:
        self.optimizer = optimizer
        self.factor = factor
        self.constant = constant  # factor(t) == 1 for every t: a step only counts
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0  # LambdaLR's name for the number of steps taken
        self._factor: float | None = None
        self._apply()

    def _apply(self) -> None:
        value = self.factor(self.last_epoch)
        if value != self._factor:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base * value
            self._factor = value

    def step(self) -> None:
        self.last_epoch += 1
        if not self.constant:
            self._apply()

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        # LambdaLR's keys, so either class reads the other's state.
        return {
            "base_lrs": list(self.base_lrs),
            "last_epoch": self.last_epoch,
            "_step_count": self.last_epoch + 1,
            "_last_lr": self.get_last_lr(),
        }

    def load_state_dict(self, state: dict[str, Any], *, keep_base_lrs: bool = False) -> None:
        """Continue from a saved position (this class's state or a LambdaLR's).

        Args:
            state: the saved state.
            keep_base_lrs: keep the current groups' base learning rates (when the groups
                were rebuilt and the saved ones no longer match them one to one).
        """
        saved = list(state.get("base_lrs", self.base_lrs))
        if not keep_base_lrs and len(saved) == len(self.optimizer.param_groups):
            self.base_lrs = saved
        self.last_epoch = int(state["last_epoch"])
        self._factor = None  # write every group's lr for the restored step
        self._apply()


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> LRSchedule:
    """Warm-up, then constant, cosine (to ``min_lr`` at ``total_steps``), step or multistep decay.

    The warm-up is a linear ramp over ``warmup_steps``, or, with ``warmup_lr``, that lr
    held for ``warmup_steps`` (He et al. 2016 train ResNet-110 at 0.01 for 400 steps, then
    at 0.1). Multistep multiplies the lr by ``gamma`` at each of ``milestones``, counted
    from the first step (the warm-up included), as the paper's "/10 at 32k and 48k". The
    length of the schedule comes from ``epochs``, not ``max_steps``, so that stopping
    early and resuming later follows the same curve.
    """
    warmup = config.warmup_steps
    floor = config.min_lr / config.lr if config.lr else 0.0
    held = config.warmup_lr / config.lr if config.warmup_lr is not None and config.lr else None
    milestones = sorted(config.milestones or ())

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return held if held is not None else (step + 1) / warmup
        if config.scheduler == "multistep":
            return config.gamma ** bisect.bisect_right(milestones, step)
        if config.scheduler == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if config.scheduler == "step":
            return config.gamma ** ((step - warmup) // config.step_size)
        return 1.0

    return LRSchedule(optimizer, factor, constant=config.scheduler == "constant" and not warmup)


class ModelEMA:
    """An exponential moving average of a model's weights, with warm-up.

    After ``n`` updates the next one uses ``decay_n = min(decay, (1 + n) / (10 + n))``
    (the rule of TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` and timm's
    EMA warm-up): early on the average follows the training weights closely, and it
    settles to ``decay`` after about ``10 / (1 - decay)`` updates. Without it, a
    ``decay`` of 0.999 keeps the average mostly at the random initial weights for the
    first thousands of steps, which is all of a short run.

    Floating-point buffers (BatchNorm's running mean and variance) are averaged with the
    same factor as the parameters, so the statistics always describe the same stretch of
    training as the weights they normalize; copying the newest statistics instead would
    pair averaged weights with the activations of the latest raw weights. Integer
    buffers (``num_batches_tracked``) are copied.

    Args:
        model: the model to follow.
        decay: weight of the old average at each update, in (0, 1).
        warmup: use the warm-up rule above (False: ``decay`` from the first update).
    """

    def __init__(self, model: nn.Module, decay: float, *, warmup: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(
                f"train.ema_decay={decay!r} is out of range: expected a number > 0 and < 1, "
                "e.g. 0.999"
            )
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The factor the next update uses."""
        if not self.warmup:
            return self.decay
        n = self.updates
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        floats_ema, floats_now = [], []
        for ema, now in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.is_floating_point():
                floats_ema.append(ema)
                floats_now.append(now.to(ema.dtype))
            else:
                ema.copy_(now)
        if floats_ema:
            torch._foreach_lerp_(floats_ema, floats_now, 1.0 - decay)
        self.updates += 1

    def averaged_steps(self) -> float:
        """About how many recent updates the average spans now (``1 / (1 - decay_n)``)."""
        return 1.0 / (1.0 - self.current_decay())

    def state(self) -> dict[str, Any]:
        """The EMA's settings and position (its weights are saved as the model's)."""
        return {"decay": self.decay, "warmup": self.warmup, "updates": self.updates}

    def load_state(self, state: dict[str, Any]) -> None:
        self.updates = int(state.get("updates", 0))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


# --- optimizer state across changes of parameter groups -----------------------------------


def optimizer_param_names(optimizer: torch.optim.Optimizer, model: nn.Module) -> list[list[str]]:
    """The parameter names of each group of ``optimizer``, in order (saved with checkpoints)."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [[names.get(id(p), f"<unnamed {i}>") for i, p in enumerate(g["params"])]
            for g in optimizer.param_groups]  # fmt: skip


def v1_group_names(named_params: Iterable[tuple[str, nn.Parameter]]) -> list[list[str]]:
    """The groups that optimizers had before parameter groups came from ``param_groups``:
    matrices and kernels (``ndim >= 2``), then the rest; checkpoints of version 1 used it."""
    named = list(named_params)
    decay = [n for n, p in named if p.ndim >= 2]
    rest = [n for n, p in named if p.ndim < 2]
    return [decay, rest] if rest else [decay]


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    current: Sequence[Sequence[str]],
    saved: Sequence[Sequence[str]] | None,
    where: str,
) -> bool:
    """Load an optimizer's saved state, also when its parameter groups were regrouped.

    When the saved groups hold the same parameters in the same order, this is
    ``optimizer.load_state_dict`` (the exact-resume case). When the same parameters are
    grouped differently (a checkpoint written before the groups changed), each
    parameter's state (moments, step counts) is carried over by name and every group
    keeps its current settings.

    Args:
        optimizer: the freshly built optimizer.
        state: its saved ``state_dict()``.
        current: parameter names per group now (:func:`optimizer_param_names`).
        saved: parameter names per group when saved; None when the checkpoint did not
            record them (then the saved layout is taken to be the current one if the
            group sizes agree).
        where: the checkpoint, for messages.

    Returns:
        True when the groups were regrouped (the caller then re-derives learning rates).

    Raises:
        CheckpointError: the saved state is for other parameters.
    """
    saved_sizes = [len(g["params"]) for g in state["param_groups"]]
    if saved is None:
        if saved_sizes != [len(g) for g in current]:
            raise CheckpointError(
                f"{where}: its optimizer has groups of {saved_sizes} parameters, this run's "
                f"{[len(g) for g in current]}; was it written for another model or recipe?"
            )
        saved = current
    saved = [list(g) for g in saved]
    current = [list(g) for g in current]
    if saved == current:
        optimizer.load_state_dict(state)
        return False
    flat_saved = [n for g in saved for n in g]
    flat_now = [n for g in current for n in g]
    if sorted(flat_saved) != sorted(flat_now) or len(flat_saved) != sum(saved_sizes):
        missing = sorted(set(flat_now) - set(flat_saved))[:5]
        extra = sorted(set(flat_saved) - set(flat_now))[:5]
        raise CheckpointError(
            f"{where}: its optimizer state is for other parameters (missing {missing}, "
            f"unexpected {extra}); was it written for another model?"
        )
    saved_ids = [i for g in state["param_groups"] for i in g["params"]]
    by_name = dict(zip(flat_saved, saved_ids))
    now = optimizer.state_dict()
    remapped = {
        "state": {},
        "param_groups": [dict(g) for g in now["param_groups"]],
    }
    for new_id, name in enumerate(flat_now):
        old = state["state"].get(by_name[name])
        if old is not None:
            remapped["state"][new_id] = old
    optimizer.load_state_dict(remapped)
    _logger.info(
        "%s: optimizer groups regrouped (%d -> %d groups); each parameter's state carried "
        "over by name",
        where,
        len(saved),
        len(current),
    )
    return True
