"""Measuring models: the metrics of each task (`task_metrics`) and evaluation on labelled data through the path
users run (`evaluate_model`), which `medhub evaluate`, `medhub train` and the zoo build share."""

from .evaluate import EvaluationResult, choose_threshold_on, classify_rows, evaluate_model, format_table
from .task_metrics import (
                           BRATS_REGIONS,
                           card_metrics,
                           classification_metrics,
                           compute_metrics_fn,
                           label_names,
                           preprocess_logits_fn,
                           region_dice,
                           segmentation_metrics,
                           task_metrics,
                           task_of,
)

__all__ = ["BRATS_REGIONS", "EvaluationResult", "card_metrics", "choose_threshold_on", "classification_metrics",
           "classify_rows", "compute_metrics_fn", "evaluate_model", "format_table", "label_names",
           "preprocess_logits_fn", "region_dice", "segmentation_metrics", "task_metrics", "task_of"]
