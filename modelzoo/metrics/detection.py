"""COCO-style mean average precision for object detection, written for this project.

The computation follows the COCO evaluation (``pycocotools.cocoeval``) for the
"all areas" setting without crowd regions:

1. Per image and class, detections are taken in decreasing score order (at
   most ``max_detections`` per image, the best over all classes) and each is
   matched greedily to the not yet matched ground-truth box of its class with
   the highest IoU, if that IoU reaches the threshold; matched detections are
   true positives, the rest false positives.
2. Per class, the detections of every image are ranked by score; the
   precision/recall curve is made monotone (each precision becomes the best
   precision at any higher recall) and read at the 101 recall points
   0, 0.01, ..., 1 (a point beyond the highest recall reached reads 0).
   AP is the mean of those 101 precisions.
3. mAP averages AP over the classes that have ground truth (a class with
   detections but no ground truth is left out, as in COCO) and, for ``map``,
   over the IoU thresholds 0.50, 0.55, ..., 0.95.

Labels are class indices as the detector produces them (the zoo uses 1..K).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["COCO_IOU_THRESHOLDS", "MeanAveragePrecision", "average_precision", "box_iou"]

COCO_IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes: (N, 4) and (M, 4) give (N, M)."""
    area_a = (a[:, 2] - a[:, 0]).clamp_min(0) * (a[:, 3] - a[:, 1]).clamp_min(0)
    area_b = (b[:, 2] - b[:, 0]).clamp_min(0) * (b[:, 3] - b[:, 1]).clamp_min(0)
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp_min(0).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp_min(1e-12)


def average_precision(scores: np.ndarray, matched: np.ndarray, num_gt: int) -> float:
    """COCO's 101-point interpolated AP of one class at one IoU threshold.

    Args:
        scores: (D,) detection scores from every image.
        matched: (D,) whether each detection is a true positive.
        num_gt: ground-truth boxes of the class; must be positive.
    """
    if num_gt <= 0:
        raise ValueError("average precision needs at least one ground-truth box")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="mergesort")  # stable, like pycocotools
    tp = np.cumsum(matched[order].astype(np.float64))
    fp = np.cumsum((~matched[order]).astype(np.float64))
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    # The envelope: the best precision reachable at this recall or any higher one.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, _RECALL_POINTS, side="left")
    sampled = np.where(index < len(precision), precision[np.minimum(index, len(precision) - 1)], 0)
    return float(sampled.mean())


class MeanAveragePrecision:
    """Accumulates detections image by image and computes COCO-style mAP at the end.

    ``update`` matches each image's detections to its ground truth at once and
    keeps only (class, score, matched-at-each-threshold) per detection and the
    ground-truth count per class, so memory grows with the number of
    detections, not with the images. ``state()`` and ``merge()`` let
    processes combine their parts before ``compute()``.

    Args:
        iou_thresholds: the IoU thresholds to average over (COCO's ten by default).
        max_detections: detections kept per image, the highest-scoring first.
    """

    def __init__(
        self,
        iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
        max_detections: int = 100,
    ) -> None:
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.max_detections = max_detections
        self.reset()

    def reset(self) -> None:
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._matched: list[np.ndarray] = []  # (D, T) bool per image
        self._num_gt: dict[int, int] = {}

    def update(
        self, predictions: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, Any]]
    ) -> None:
        """Add a batch: per image, predictions {boxes, scores, labels}, targets {boxes, labels}."""
        if len(predictions) != len(targets):
            raise ValueError(
                f"got {len(predictions)} predictions for {len(targets)} targets; pass one of "
                "each per image"
            )
        for pred, target in zip(predictions, targets, strict=True):
            self._update_image(pred, target)

    def _update_image(self, pred: dict[str, torch.Tensor], target: dict[str, Any]) -> None:
        gt_boxes = torch.as_tensor(target["boxes"]).detach().float().cpu().reshape(-1, 4)
        gt_labels = torch.as_tensor(target["labels"]).detach().cpu().reshape(-1).long()
        for label in gt_labels.tolist():
            self._num_gt[label] = self._num_gt.get(label, 0) + 1
        boxes = pred["boxes"].detach().float().cpu().reshape(-1, 4)
        scores = pred["scores"].detach().float().cpu().reshape(-1)
        labels = pred["labels"].detach().cpu().reshape(-1).long()
        order = torch.argsort(scores, descending=True, stable=True)[: self.max_detections]
        boxes, scores, labels = boxes[order], scores[order], labels[order]
        thresholds = np.asarray(self.iou_thresholds)
        matched = np.zeros((len(scores), len(thresholds)), dtype=bool)
        for label in labels.unique().tolist():
            det_idx = torch.nonzero(labels == label).flatten()
            gt_idx = torch.nonzero(gt_labels == label).flatten()
            if len(gt_idx) == 0:
                continue
            iou = box_iou(boxes[det_idx], gt_boxes[gt_idx]).numpy()  # detections in score order
            # Greedy matching at every threshold at once: taken is (T, G).
            taken = np.zeros((len(thresholds), len(gt_idx)), dtype=bool)
            rows = np.arange(len(thresholds))
            for d, det in enumerate(det_idx.tolist()):
                candidates = np.where(taken, -1.0, iou[d][None, :])
                best = candidates.argmax(1)
                hit = candidates[rows, best] >= thresholds
                taken[rows[hit], best[hit]] = True
                matched[det, hit] = True
        self._labels.append(labels.numpy())
        self._scores.append(scores.numpy())
        self._matched.append(matched)

    def state(self) -> dict[str, Any]:
        """What another process needs to merge this one's images into its own."""
        return {
            "labels": self._labels,
            "scores": self._scores,
            "matched": self._matched,
            "num_gt": dict(self._num_gt),
        }

    def merge(self, state: dict[str, Any]) -> None:
        """Add the images of another accumulator's ``state()``."""
        self._labels.extend(state["labels"])
        self._scores.extend(state["scores"])
        self._matched.extend(state["matched"])
        for label, count in state["num_gt"].items():
            self._num_gt[label] = self._num_gt.get(label, 0) + count

    def per_class(self) -> dict[int, np.ndarray]:
        """AP of each class that has ground truth, one value per IoU threshold."""
        num_t = len(self.iou_thresholds)
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0, np.float32)
        matched = np.concatenate(self._matched) if self._matched else np.zeros((0, num_t), bool)
        out = {}
        for label, num_gt in sorted(self._num_gt.items()):
            keep = labels == label
            out[label] = np.array(
                [average_precision(scores[keep], matched[keep, t], num_gt) for t in range(num_t)]
            )
        return out

    def compute(self) -> dict[str, float]:
        """``map`` (mean over the thresholds), ``map_50`` and ``map_75`` where they are thresholds.

        With no ground truth at all every value is NaN: precision is undefined.
        """
        ap = self.per_class()
        table = (
            np.stack(list(ap.values())) if ap else np.full((1, len(self.iou_thresholds)), np.nan)
        )
        result = {"map": float(table.mean())}
        for name, threshold in (("map_50", 0.5), ("map_75", 0.75)):
            if threshold in self.iou_thresholds:
                result[name] = float(table[:, self.iou_thresholds.index(threshold)].mean())
        return result
