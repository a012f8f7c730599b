"""Evaluation metrics that need more than a running mean: detection mAP, segmentation IoU."""

from modelzoo.metrics.detection import (
    COCO_IOU_THRESHOLDS,
    MeanAveragePrecision,
    average_precision,
    box_iou,
)
from modelzoo.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "MeanAveragePrecision",
    "average_precision",
    "box_iou",
    "confusion_matrix",
    "segmentation_scores",
]
