"""Evaluation metrics: classification (CheXNet-style), calibration, segmentation overlap/boundary, ISBI 2012, and
instance segmentation (the 2018 Data Science Bowl score, F1 / AP at an IoU threshold)."""

from ._utils import UndefinedMetricWarning
from .calibration import brier_score, expected_calibration_error, predictive_entropy
from .classification import accuracy, choose_threshold, f1_at_threshold, mean_auroc, per_class_auroc, roc_auc
from .instances import (
    DSB_THRESHOLDS,
    InstanceScores,
    dsb_score,
    instance_iou,
    instance_scores,
    match_counts,
    mean_instance_scores,
)
from .isbi import (
    RandScores,
    foreground_restricted_rand_error,
    foreground_restricted_rand_scores,
    pixel_error,
    segmentation_rand_scores,
)
from .segmentation import dice, hausdorff_distance, hausdorff_distance_95, iou

__all__ = [
    "DSB_THRESHOLDS",
    "InstanceScores",
    "RandScores",
    "UndefinedMetricWarning",
    "accuracy",
    "brier_score",
    "choose_threshold",
    "dice",
    "dsb_score",
    "expected_calibration_error",
    "f1_at_threshold",
    "foreground_restricted_rand_error",
    "foreground_restricted_rand_scores",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "instance_iou",
    "instance_scores",
    "iou",
    "match_counts",
    "mean_auroc",
    "mean_instance_scores",
    "per_class_auroc",
    "pixel_error",
    "predictive_entropy",
    "roc_auc",
    "segmentation_rand_scores",
]
