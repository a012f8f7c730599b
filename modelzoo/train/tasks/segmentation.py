"""Semantic segmentation: cross-entropy and/or Dice loss; mean IoU and pixel accuracy.

Batches are ``(images, masks)``: images (B, C, H, W) and masks (B, H, W) of
class indices, ``ignore_index`` marking pixels that count nowhere. The model
returns logits (B, num_classes, H, W), or a dict with them under ``"out"``
(torchvision's segmentation models).

Evaluation sums a confusion matrix over every batch, through the trainer's
totals: for each class its true positives and its union (true positives,
false positives and false negatives) as one (sum, count) pair, and the
correct and counted pixels for pixel accuracy. The IoU of a class is the
ratio of its sums over the whole evaluation (what a dataset-level confusion
matrix gives, and what a mean of per-batch IoUs would not), ``miou`` their
mean over the classes that occur in the targets or the predictions.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from modelzoo.errors import ConfigError, InputShapeError
from modelzoo.metrics.segmentation import confusion_matrix
from modelzoo.train.tasks.base import Task, Totals

__all__ = ["SegmentationTask", "dice_loss", "segmentation_logits"]

_LOSSES = ("ce", "dice", "ce+dice")


def segmentation_logits(out: Any) -> torch.Tensor:
    """The (B, K, H, W) logits of a segmentation model's output (a tensor or ``out["out"]``)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and "out" in out:
        return out["out"]
    raise TypeError(
        f"cannot find logits in a {type(out).__name__}; a segmentation model should return "
        "a tensor (B, num_classes, H, W) or a dict with it under 'out'"
    )


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None, smooth: float = 1.0
) -> torch.Tensor:
    """1 - the soft Dice coefficient averaged over classes (Milletari et al., V-Net, 2016).

    Sums run over the whole batch, so a class absent from one image does not
    count as a perfect score there; ``smooth`` keeps absent classes finite.
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(1)  # (B, K, H, W)
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        valid = target != ignore_index
    one_hot = F.one_hot(torch.where(valid, target, 0), num_classes)  # (B, H, W, K)
    one_hot = one_hot.permute(0, 3, 1, 2).to(probs) * valid[:, None]
    probs = probs * valid[:, None]
    inter = (probs * one_hot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    return 1 - ((2 * inter + smooth) / (denom + smooth)).mean()


class SegmentationTask(Task):
    """Per-pixel classification on ``(images, masks)`` batches.

    Args:
        model: returns logits (B, num_classes, H, W) at the masks' resolution.
        loss: ``"ce"`` (cross-entropy), ``"dice"`` (soft Dice), or ``"ce+dice"`` (their sum).
        ignore_index: mask value of pixels left out of losses and metrics.
        class_weights: cross-entropy weight per class (e.g. to lift rare classes).
    """

    name = "segmentation"
    monitor = "miou"
    monitor_mode = "max"

    def __init__(
        self,
        model: nn.Module,
        *,
        loss: Literal["ce", "dice", "ce+dice"] = "ce",
        ignore_index: int = 255,
        class_weights: list[float] | None = None,
    ) -> None:
        super().__init__(model)
        if loss not in _LOSSES:
            raise ConfigError(
                f"unknown segmentation loss {loss!r}; use one of {', '.join(_LOSSES)}"
            )
        self.loss = loss
        self.ignore_index = ignore_index
        self.class_weights = class_weights

    def _check(self, logits: torch.Tensor, masks: torch.Tensor) -> None:
        if logits.ndim != 4 or masks.shape != logits.shape[:1] + logits.shape[2:]:
            raise InputShapeError(
                f"masks of shape {tuple(masks.shape)} do not match logits of shape "
                f"{tuple(logits.shape)}; masks must be (B, H, W) class indices at the logits' "
                "resolution (B, num_classes, H, W)"
            )

    def losses(self, logits: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """The configured loss (``loss``) and its parts (``ce``, ``dice``) for logits and masks."""
        self._check(logits, masks)
        logits = logits.float()
        out: dict[str, torch.Tensor] = {}
        if "ce" in self.loss:
            weight = None
            if self.class_weights is not None:
                weight = torch.tensor(self.class_weights, device=logits.device, dtype=torch.float32)
            out["ce"] = F.cross_entropy(
                logits, masks, weight=weight, ignore_index=self.ignore_index
            )
        if "dice" in self.loss:
            out["dice"] = dice_loss(logits, masks, self.ignore_index)
        total = sum(out.values())
        return {"loss": total, **out} if len(out) > 1 else {"loss": total}

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        images, masks = batch
        return self.losses(segmentation_logits(self.net(images)), masks)

    def validation_step(self, batch: Any) -> Totals:
        images, masks = batch
        logits = segmentation_logits(self.model(images))
        n = len(images)
        totals: Totals = {k: (float(v) * n, n) for k, v in self.losses(logits, masks).items()}
        num_classes = logits.shape[1]
        cm = confusion_matrix(logits.argmax(1), masks, num_classes, self.ignore_index).cpu()
        tp = cm.diagonal()
        union = cm.sum(0) + cm.sum(1) - tp
        # Every class is reported by every batch (and process), present or not, so the
        # trainer's sums line up; compute_metrics skips classes whose union stays 0.
        for c in range(num_classes):
            totals[f"iou_{c}"] = (float(tp[c]), int(union[c]))
        totals["pixel_accuracy"] = (float(tp.sum()), int(cm.sum()))
        return totals

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        metrics = {}
        ious = []
        for key, (s, c) in totals.items():
            if key.startswith("iou_"):
                if c > 0:
                    metrics[key] = s / c
                    ious.append(s / c)
            else:
                metrics[key] = s / max(c, 1)
        metrics["miou"] = sum(ious) / len(ious) if ious else float("nan")
        return metrics

    def predict_step(self, batch: Any) -> torch.Tensor:
        """The predicted class of every pixel, (B, H, W)."""
        return segmentation_logits(self.model(self.inputs_of(batch))).argmax(1)
