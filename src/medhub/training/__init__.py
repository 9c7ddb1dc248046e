"""Fine-tuning medhub models through `transformers.Trainer`, driven by YAML recipes (`medhub.training.recipe`)."""

from ..evaluation import EvaluationResult, card_metrics, evaluate_model, format_table, task_metrics
from .collators import ClassificationCollator, SegmentationCollator
from .recipe import Recipe, build_model, load_recipe
from .trainer import TrainResult, build_trainer, make_collator, train, training_arguments

__all__ = [
    "ClassificationCollator",
    "EvaluationResult",
    "Recipe",
    "SegmentationCollator",
    "TrainResult",
    "build_model",
    "build_trainer",
    "card_metrics",
    "evaluate_model",
    "format_table",
    "load_recipe",
    "make_collator",
    "task_metrics",
    "train",
    "training_arguments",
]
