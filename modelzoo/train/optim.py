"""Optimizers, learning-rate schedules and the weight EMA."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import nn

from modelzoo.config import TrainConfig
from modelzoo.errors import ConfigError

__all__ = ["param_groups_weight_decay", "build_optimizer", "build_scheduler", "ModelEMA"]


def param_groups_weight_decay(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict]:
    """Two groups: weight decay for matrices and kernels (ndim >= 2), none for biases and norms."""
    decay, no_decay = [], []
    for _, p in named_params:
        # Frozen parameters join too: they get no gradient (optimizers skip them) until a
        # schedule such as transfer.GradualUnfreeze unfreezes them mid-run.
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(
    named_params: Iterable[tuple[str, nn.Parameter]], config: TrainConfig
) -> torch.optim.Optimizer:
    groups = param_groups_weight_decay(named_params, config.weight_decay)
    if not any(p.requires_grad for g in groups for p in g["params"]):
        raise ConfigError("the model has no trainable parameters; unfreeze some before training")
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr, betas=config.betas)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then constant, cosine (to ``min_lr`` at ``total_steps``) or step decay.

    The length of the schedule comes from ``epochs``, not ``max_steps``, so that
    stopping early and resuming later follows the same curve.
    """
    warmup = config.warmup_steps
    floor = config.min_lr / config.lr if config.lr else 0.0

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if config.scheduler == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if config.scheduler == "step":
            return config.gamma ** ((step - warmup) // config.step_size)
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class ModelEMA:
    """An exponential moving average of a model's parameters and buffers.

    Args:
        model: the model to follow.
        decay: weight of the old average at each update.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1); got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema, current in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema.is_floating_point():
                ema.lerp_(current.to(ema.dtype), 1.0 - self.decay)
            else:
                ema.copy_(current)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
