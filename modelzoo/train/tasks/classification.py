"""Classification and regression tasks."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.train.tasks.base import Task, Totals

__all__ = ["ClassificationTask", "RegressionTask"]


class ClassificationTask(Task):
    """Cross-entropy on (inputs, labels) batches; accuracy, top-k accuracy and loss.

    Args:
        model: returns logits (B, num_classes).
        label_smoothing: cross-entropy label smoothing.
        topk: the k of the top-k accuracy reported besides top-1 (skipped when k >= classes).
    """

    name = "classification"
    monitor = "accuracy"
    monitor_mode = "max"

    def __init__(self, model: nn.Module, *, label_smoothing: float = 0.0, topk: int = 5) -> None:
        super().__init__(model)
        self.label_smoothing = label_smoothing
        self.topk = topk

    def _forward(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        *inputs, labels = batch
        return self.net(*inputs), labels

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        logits, labels = self._forward(batch)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        return {"loss": loss}

    def validation_step(self, batch: Any) -> Totals:
        *inputs, labels = batch
        logits = self.model(*inputs).float()
        n = len(labels)
        totals = {
            "loss": (F.cross_entropy(logits, labels, reduction="sum").item(), n),
            "accuracy": ((logits.argmax(-1) == labels).sum().item(), n),
        }
        if logits.shape[-1] > self.topk:
            top = logits.topk(self.topk, dim=-1).indices
            totals[f"top{self.topk}"] = ((top == labels[:, None]).any(-1).sum().item(), n)
        return totals

    def predict_step(self, batch: Any) -> torch.Tensor:
        inputs = batch[:-1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else [batch]
        return self.model(*inputs).argmax(-1)


class RegressionTask(Task):
    """Mean squared error on (inputs, targets) batches; reports mse and mae."""

    name = "regression"
    monitor = "mse"

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        *inputs, target = batch
        pred = self.net(*inputs).float()
        return {"loss": F.mse_loss(pred.reshape(target.shape), target.float())}

    def validation_step(self, batch: Any) -> Totals:
        *inputs, target = batch
        pred = self.model(*inputs).float().reshape(target.shape)
        err = pred - target.float()
        n = err.numel()
        return {"mse": (err.pow(2).sum().item(), n), "mae": (err.abs().sum().item(), n)}
