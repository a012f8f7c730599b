"""Semantic segmentation metrics from a confusion matrix: per-class IoU, mean IoU, pixel accuracy.

A confusion matrix summed over an evaluation gives the exact dataset-level
metrics (the intersection and union of each class over every pixel), which a
mean of per-batch IoUs would not. Pixels labelled ``ignore_index`` count nowhere.
"""

from __future__ import annotations

import torch

__all__ = ["confusion_matrix", "segmentation_scores"]


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None = None
) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts: row = true class, column = predicted class.

    Args:
        pred: predicted class per pixel, any shape.
        target: true class per pixel, the same shape.
        num_classes: classes, background included.
        ignore_index: a target value whose pixels are left out.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid &= target != ignore_index
    index = target[valid] * num_classes + pred[valid].clamp(0, num_classes - 1)
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def segmentation_scores(cm: torch.Tensor) -> dict[str, float | list[float]]:
    """IoU per class, their mean over the classes present, and pixel accuracy.

    A class that appears neither in the targets nor in the predictions has no
    IoU (NaN in ``iou``) and is left out of ``miou``.
    """
    cm = cm.double()
    tp = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    present = union > 0
    total = cm.sum()
    return {
        "iou": iou.tolist(),
        "miou": float(iou[present].mean()) if present.any() else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
    }
