"""Object detection: the detector's own losses in training, COCO-style mAP in evaluation.

Batches are ``(images, targets)``: images (B, C, H, W) and one dict per image
with ``boxes`` (n, 4) xyxy pixels and ``labels`` (n,) in ``1..num_classes``
(see :func:`modelzoo.data.shapes.collate_detection`).

Two kinds of model work:

* the zoo's detectors (e.g. ``fcos_tiny``), whose ``forward`` returns raw
  outputs and which provide ``loss(outputs, targets)`` and
  ``postprocess(outputs, image_size)``; evaluation also reports the loss;
* torchvision's detectors (``torchvision/fasterrcnn_resnet50_fpn``, ...), which
  take ``(list of images, targets)`` and return their loss dict in training and
  detections in evaluation.

mAP is not a mean of per-batch values: it ranks every detection of the
evaluation at once. So ``validation_step`` matches each image's detections to
its ground truth and keeps the result in a :class:`MeanAveragePrecision`, and
``compute_metrics`` (which the trainer calls once at the end of each
evaluation) turns it into ``map`` (IoU 0.5:0.95), ``map_50`` and ``map_75``
and closes the evaluation, so that the next ``validation_step`` starts a fresh
one. Under torch.distributed each process's matches are gathered first, so
every process reports the mAP of the whole evaluation set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from modelzoo.metrics.detection import COCO_IOU_THRESHOLDS, MeanAveragePrecision
from modelzoo.train.tasks.base import Task, Totals

__all__ = ["DetectionTask"]


def _is_native(model: nn.Module) -> bool:
    return hasattr(model, "loss") and hasattr(model, "postprocess")


class DetectionTask(Task):
    """Train a detector on ``(images, targets)`` batches; evaluate mAP.

    Args:
        model: a zoo detector (``loss`` and ``postprocess`` methods) or a torchvision one.
        iou_thresholds: IoU thresholds ``map`` averages over (COCO's 0.5:0.95 by default).
        max_detections: detections per image counted by the metric.
    """

    name = "detection"
    monitor = "map"
    monitor_mode = "max"

    def __init__(
        self,
        model: nn.Module,
        *,
        iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
        max_detections: int = 100,
    ) -> None:
        super().__init__(model)
        self.iou_thresholds = tuple(iou_thresholds)
        self.max_detections = max_detections
        self._metric: MeanAveragePrecision | None = None  # open evaluation, if any

    def training_step(self, batch: Any, optimizer: str) -> dict[str, torch.Tensor]:
        images, targets = batch
        if _is_native(self.model):
            return self.model.loss(self.net(images), targets)
        losses = self.net(list(images), targets)  # torchvision: a dict of named losses
        return {"loss": sum(losses.values()), **losses}

    def _detect(self, images: torch.Tensor, targets: list[dict]) -> tuple[list[dict], Totals]:
        if not _is_native(self.model):
            return self.model(list(images)), {}
        outputs = self.model(images)
        n = len(images)
        losses = self.model.loss(outputs, targets)
        totals = {k: (float(v) * n, n) for k, v in losses.items()}
        return self.model.postprocess(outputs, tuple(images.shape[-2:])), totals

    def validation_step(self, batch: Any) -> Totals:
        if self._metric is None:  # the first batch of a new evaluation
            self._metric = MeanAveragePrecision(self.iou_thresholds, self.max_detections)
        images, targets = batch
        detections, totals = self._detect(images, targets)
        self._metric.update(detections, targets)
        return totals

    def compute_metrics(self, totals: Totals) -> dict[str, float]:
        metrics = super().compute_metrics(totals)
        metric, self._metric = self._metric, None  # this evaluation is over
        if metric is None:
            return metrics
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            states: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(states, metric.state())
            metric = MeanAveragePrecision(self.iou_thresholds, self.max_detections)
            for state in states:
                metric.merge(state)
        metrics.update(metric.compute())
        return metrics

    def predict_step(self, batch: Any) -> list[dict[str, torch.Tensor]]:
        images = self.inputs_of(batch)
        if _is_native(self.model):
            return self.model.postprocess(self.model(images), tuple(images.shape[-2:]))
        return self.model(list(images))
