"""Evaluation metrics that need more than a running mean.

Detection mAP, segmentation IoU, AUROC of a score, the measures a trained classifier
gives a set of (generated) inputs, and the trivial baselines a model must beat.
"""

from modelzoo.metrics.baselines import mean_predictor_mse
from modelzoo.metrics.detection import (
    COCO_IOU_THRESHOLDS,
    MeanAveragePrecision,
    average_precision,
    box_iou,
)
from modelzoo.metrics.judge import classifier_measures
from modelzoo.metrics.ranking import auroc
from modelzoo.metrics.segmentation import confusion_matrix, segmentation_scores

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "MeanAveragePrecision",
    "auroc",
    "average_precision",
    "box_iou",
    "classifier_measures",
    "confusion_matrix",
    "mean_predictor_mse",
    "segmentation_scores",
]
