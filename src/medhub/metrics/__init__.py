"""Evaluation metrics: classification (CheXNet-style), calibration, segmentation overlap/boundary, ISBI 2012."""

from ._utils import UndefinedMetricWarning
from .calibration import brier_score, expected_calibration_error, predictive_entropy
from .classification import accuracy, choose_threshold, f1_at_threshold, mean_auroc, per_class_auroc, roc_auc
from .isbi import (
    RandScores,
    foreground_restricted_rand_error,
    foreground_restricted_rand_scores,
    pixel_error,
    segmentation_rand_scores,
)
from .segmentation import dice, hausdorff_distance, hausdorff_distance_95, iou

__all__ = [
    "RandScores",
    "UndefinedMetricWarning",
    "accuracy",
    "brier_score",
    "choose_threshold",
    "dice",
    "expected_calibration_error",
    "f1_at_threshold",
    "foreground_restricted_rand_error",
    "foreground_restricted_rand_scores",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "iou",
    "mean_auroc",
    "per_class_auroc",
    "pixel_error",
    "predictive_entropy",
    "roc_auc",
    "segmentation_rand_scores",
]
