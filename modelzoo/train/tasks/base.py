"""The task interface: what a family's training step computes, separate from the loop.

A task owns the model and knows its losses and metrics. The trainer owns
devices, precision, optimizers, accumulation, checkpoints and logging, so a new
family needs a task of a few dozen lines and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Task", "Totals", "batch_size_of", "evaluating"]

# Sums and counts of a metric over an evaluation: mean = sum / count.
Totals = dict[str, tuple[float, int]]


def batch_size_of(batch: Any) -> int:
    """The number of samples in a batch: the length of its first tensor."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    if isinstance(batch, dict):
        return batch_size_of(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return batch_size_of(batch[0])
    raise TypeError(f"cannot tell the batch size of a {type(batch).__name__}")


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[torch.device]:
    """Run a block with ``model`` in eval mode, then give it back its mode.

    For figures drawn mid-training (dropout and batch norm as in evaluation, the
    training mode restored even when drawing fails).

    Yields:
        The device of the model's first parameter (the CPU for a model without any).
    """
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        yield p.device if p is not None else torch.device("cpu")
    finally:
        model.train(was_training)


class Task:
    """Base class of training tasks.

    Subclasses implement :meth:`training_step` and :meth:`validation_step`;
    tasks with several optimizers (a GAN's two) override
    :attr:`optimizer_names`, :meth:`parameters` and :meth:`schedule`.

    Args:
        model: the network to train.
    """

    name = "task"
    optimizer_names: tuple[str, ...] = ("main",)
    monitor = "loss"  # the validation metric that picks best.ckpt
    monitor_mode = "min"  # min or max

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._forward_model: nn.Module | None = None

    # --- what the trainer calls -------------------------------------------------------

    @property
    def net(self) -> nn.Module:
        """The model to call in training steps: wrapped for DDP when distributed."""
        return self._forward_model if self._forward_model is not None else self.model

    def wrap(self, wrap_fn: Callable[[nn.Module], nn.Module]) -> list[nn.Module]:
        """Wrap the trainable modules for distributed training; returns the wrappers."""
        self._forward_model = wrap_fn(self.model)
        return [self._forward_model]

    def parameters(self, optimizer: str) -> Iterator[tuple[str, nn.Parameter]]:
        """The named parameters that ``optimizer`` updates."""
        return self.model.named_parameters()

    def schedule(self) -> list[str]:
        """Optimizer names in the order they step for each batch."""
        return list(self.optimizer_names)

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        """Named losses for one batch; ``"loss"`` is the one ``optimizer`` minimizes."""
        raise NotImplementedError

    def validation_step(self, batch: Any) -> Totals:
        """Metric sums and counts for one evaluation batch."""
        raise NotImplementedError

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        """Turn summed totals into metrics; the default is the mean of each."""
        return {k: s / max(c, 1) for k, (s, c) in totals.items()}

    def predict_step(self, batch: Any) -> Any:
        """Predictions for one batch (the model's output by default)."""
        return self.model(self.inputs_of(batch))

    def inputs_of(self, batch: Any) -> Any:
        """The model input in a batch: the batch itself, or its first element."""
        return batch[0] if isinstance(batch, (list, tuple)) else batch

    def on_epoch_start(self, epoch: int) -> None:
        """Called before each training epoch (e.g. to reset a recurrent state)."""

    def plot(self, out_dir: Path, step: int) -> list[Path]:
        """Task-specific figures (sample grids, reconstructions) written at the end of a run."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """Task state that an exact resume needs besides the model (e.g. carried hidden state)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
