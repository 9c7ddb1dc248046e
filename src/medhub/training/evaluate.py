"""Evaluation of a medhub model on a labelled dataset, with the metrics of its task.

- classification: AUROC (mean over classes for multi-label / multi-class), accuracy and F1 at a threshold
  (0.5 by default, or one chosen on the *validation* split with `choose_threshold` and then applied as is);
- segmentation: Dice per class (`dice_<label>`) and the mean over the foreground classes (`mean_dice`); for
  2D two-class maps (membrane / cell, as ISBI 2012) `evaluate_model` adds the challenge's `pixel_error` and
  foreground-restricted `rand_error` (mean over images), and, for models whose `weights_info["instances"]`
  names a post-processing, `rand_error_watershed` of those cell instances. Models whose
  `weights_info["inference"]` names a `roi_size` are evaluated on whole images with sliding-window inference
  (Gaussian blending).

`task_metrics` is the one function both `Trainer`'s `compute_metrics` and `evaluate_model` call, so the
numbers of training logs, model cards and `medhub evaluate` come from the same code. `card_metrics` turns a
metrics dict into the `weights_info["metrics"]` list a model card reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .. import metrics as M
from ..errors import InputError
from ..losses.segmentation_loss import crop_to_output

SEGMENTATION = "image-segmentation"
CLASSIFICATION = "image-classification"

# metric name -> the Hub's metric `type` id (https://hf.co/metrics)
METRIC_TYPES = {"auroc": "roc_auc", "accuracy": "accuracy", "f1": "f1", "dice": "dice", "threshold": "threshold",
                "pixel": "pixel_error", "rand": "rand_error"}


def task_of(model) -> str:
    """"image-segmentation" or "image-classification", from the model class's pipeline tag."""
    tag = getattr(model, "pipeline_tag", "") or CLASSIFICATION
    if tag not in (SEGMENTATION, CLASSIFICATION):
        raise InputError(f"{type(model).__name__}: pipeline_tag {tag!r} has no medhub metrics")
    return tag


def label_names(config) -> list[str]:
    return [str(config.id2label.get(i, i)).replace(" ", "_") for i in range(config.num_labels)]


# -- metrics from predictions --------------------------------------------------------------------------
def class_scores(logits: np.ndarray, labels: np.ndarray, problem_type: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(y_true 0/1, y_score) as `medhub.metrics` takes them: (N,) for 2 classes, else (N, K)."""
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    if problem_type == "multi_label_classification":
        return np.asarray(labels).astype(np.int64), torch.sigmoid(logits).numpy()
    probs = torch.softmax(logits, dim=-1).numpy()
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if probs.shape[1] == 2:
        return labels, probs[:, 1]
    return np.eye(probs.shape[1], dtype=np.int64)[labels], probs


def classification_metrics(logits, labels, problem_type: str | None, names: list[str],
                           threshold: float | np.ndarray = 0.5) -> dict[str, float]:
    y, s = class_scores(logits, labels, problem_type)
    out: dict[str, float] = {}
    if y.ndim == 1:
        out["auroc"] = M.roc_auc(y, s)
        out["accuracy"] = M.accuracy(y, s, threshold)
        out["f1"] = M.f1_at_threshold(y, s, threshold)
        return out
    per_class = M.per_class_auroc(y, s)
    out["auroc"] = M.mean_auroc(y, s)
    if problem_type == "multi_label_classification":
        out["accuracy"] = float(np.mean(M.accuracy(y, s, threshold)))
        out["f1"] = float(np.mean(M.f1_at_threshold(y, s, threshold)))
    else:  # mutually exclusive classes: the predicted class is the argmax
        out["accuracy"] = float(np.mean(s.argmax(1) == y.argmax(1)))
    out.update({f"auroc_{n}": float(v) for n, v in zip(names, per_class)})
    return out


def segmentation_metrics(pred, labels, names: list[str]) -> dict[str, float]:
    """Dice per class over all pixels of `pred` (N, *out) class maps vs `labels` (N, *in), centre-cropped."""
    pred = torch.as_tensor(np.asarray(pred)).long()
    target = crop_to_output(torch.as_tensor(np.asarray(labels)), tuple(pred.shape[1:]))
    scores = M.dice(pred.numpy(), target.long().numpy(), num_classes=len(names))
    out = {f"dice_{n}": float(v) for n, v in zip(names, scores)}
    foreground = scores[1:] if len(scores) > 1 else scores
    out["mean_dice"] = float(np.mean(foreground))
    return out


def isbi_metrics(pred, labels) -> dict[str, float]:
    """ISBI 2012 pixel error and foreground-restricted Rand error (class 1 = cell interior), mean over images."""
    pred = np.asarray(pred)
    target = crop_to_output(torch.as_tensor(np.asarray(labels)), tuple(pred.shape[1:])).numpy()
    pixel = [M.pixel_error(p.astype(np.float32), t.astype(np.float32)) for p, t in zip(pred, target)]
    rand = [M.foreground_restricted_rand_error(p.astype(np.float32), t.astype(np.float32)) for p, t in zip(pred, target)]
    return {"pixel_error": float(np.mean(pixel)), "rand_error": float(np.nanmean(rand))}


def instance_metrics(cell_probability, labels, instances: dict) -> dict[str, float]:
    """Foreground-restricted Rand error of the cell instances that `weights_info["instances"]` describes
    (`{"method": "membrane_watershed", **its arguments}`), mean over images: `rand_error_watershed`."""
    from ..inference import membrane_watershed, watershed_options

    options = watershed_options(instances)
    cell_probability = np.asarray(cell_probability)
    target = crop_to_output(torch.as_tensor(np.asarray(labels)), tuple(cell_probability.shape[1:])).numpy()
    rand = [1.0 - M.segmentation_rand_scores(membrane_watershed(p, **options), t.astype(np.float32)).v_rand
            for p, t in zip(cell_probability, target)]
    return {"rand_error_watershed": float(np.nanmean(rand))}


def task_metrics(task: str, config, predictions, labels, threshold=0.5) -> dict[str, float]:
    names = label_names(config)
    if task == SEGMENTATION:
        return segmentation_metrics(predictions, labels, names)
    return classification_metrics(predictions, labels, getattr(config, "problem_type", None), names, threshold)


def compute_metrics_fn(model, threshold=0.5) -> Callable:
    """A `compute_metrics` for `transformers.Trainer` (expects `preprocess_logits_fn` for segmentation)."""
    task, config = task_of(model), model.config

    def compute_metrics(eval_pred) -> dict[str, float]:
        return task_metrics(task, config, eval_pred.predictions, eval_pred.label_ids, threshold)

    return compute_metrics


def preprocess_logits_fn(model) -> Callable | None:
    """Segmentation: keep the argmax class map instead of every logit (less memory, less to gather)."""
    if task_of(model) != SEGMENTATION:
        return None

    def preprocess(logits, labels):
        logits = logits[0] if isinstance(logits, tuple) else logits
        return logits.argmax(dim=1)

    return preprocess


# -- a plain evaluation loop ---------------------------------------------------------------------------
@torch.inference_mode()
def predict(model, dataset, collator: Callable, batch_size: int = 8,
            probabilities: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) over `dataset`: logits for classifiers; class maps for segmenters, or their
    softmax probabilities (N, K, *spatial) with `probabilities=True`."""
    model.eval()
    device = next(model.parameters()).device
    segment = task_of(model) == SEGMENTATION
    window = (getattr(model.config, "weights_info", None) or {}).get("inference") if segment else None
    preds, targets = [], []
    for start in range(0, len(dataset), batch_size):
        rows = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
        batch = collator(rows)
        if "labels" not in batch:
            raise InputError(f"evaluation data row {start}: no labels; evaluation needs a labelled split")
        if window and window.get("roi_size"):  # whole images, window by window (see module docstring)
            from ..inference import sliding_window_inference

            logits = sliding_window_inference(lambda x: model(pixel_values=x).logits.float(),
                                              batch["pixel_values"].to(device), window["roi_size"],
                                              overlap=float(window.get("overlap", 0.5)),
                                              batch_size=int(window.get("batch_size", 4))).cpu()
        else:
            logits = model(pixel_values=batch["pixel_values"].to(device)).logits.float().cpu()
        if segment:
            preds.append(torch.softmax(logits, 1) if probabilities else logits.argmax(1))
        else:
            preds.append(logits)
        targets.append(batch["labels"])
    return torch.cat(preds).numpy(), torch.cat(targets).numpy()


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    split: str
    dataset: str
    threshold: Any = None
    threshold_source: str | None = None
    num_examples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def card_metrics(self) -> list[dict[str, Any]]:
        return card_metrics(self.metrics, self.split, self.dataset)

    def to_json(self) -> dict[str, Any]:
        return {"split": self.split, "dataset": self.dataset, "num_examples": self.num_examples,
                "threshold": _plain(self.threshold), "threshold_source": self.threshold_source,
                "metrics": self.card_metrics()}


def choose_threshold_on(model, validation, collator, batch_size: int = 8, criterion: str = "f1"):
    """The classification threshold(s) maximising `criterion` on a *validation* dataset."""
    logits, labels = predict(model, validation, collator, batch_size)
    y, s = class_scores(logits, labels, getattr(model.config, "problem_type", None))
    return M.choose_threshold(y, s, criterion=criterion)


def evaluate_model(model, dataset, collator: Callable, *, split: str = "validation", dataset_name: str = "custom",
                   threshold=0.5, threshold_source: str | None = None, batch_size: int = 8) -> EvaluationResult:
    """Metrics of `model` on a labelled `dataset`; `threshold` applies to classification only."""
    task = task_of(model)
    instances = (getattr(model.config, "weights_info", None) or {}).get("instances")
    two_class_2d = (task == SEGMENTATION and model.config.num_labels == 2
                    and getattr(model.config, "spatial_dims", 2) == 2)
    with_instances = bool(two_class_2d and instances)
    preds, labels = predict(model, dataset, collator, batch_size, probabilities=with_instances)
    if with_instances:  # (N, 2, H, W) probabilities: keep class 1's, score the argmax maps as usual
        cell_probability, preds = preds[:, 1], preds.argmax(1)
    metrics = task_metrics(task, model.config, preds, labels, threshold)
    if two_class_2d and np.ndim(preds) == 3:
        metrics.update(isbi_metrics(preds, labels))
    if with_instances:
        metrics.update(instance_metrics(cell_probability, labels, instances))
    if task == CLASSIFICATION and np.ndim(threshold) == 0:
        metrics["threshold"] = float(threshold)
    return EvaluationResult(metrics=metrics, split=split, dataset=dataset_name, num_examples=len(dataset),
                            threshold=threshold if task == CLASSIFICATION else None,
                            threshold_source=threshold_source if task == CLASSIFICATION else None)


# -- reporting -----------------------------------------------------------------------------------------
def card_metrics(metrics: dict[str, float], split: str, dataset: str) -> list[dict[str, Any]]:
    """`weights_info["metrics"]` entries: {name, type, value, split, dataset}; `eval_` prefixes dropped."""
    rows = []
    for name, value in metrics.items():
        name = name.removeprefix("eval_")
        if name in ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch") or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        kind = METRIC_TYPES.get(name.split("_")[0] if name != "mean_dice" else "dice", name)
        rows.append({"name": name, "type": kind, "value": float(value), "split": split, "dataset": dataset})
    return rows


def format_table(result: EvaluationResult) -> str:
    rows = result.card_metrics()
    width = max([len("metric")] + [len(r["name"]) for r in rows])
    lines = [f"{result.dataset} / {result.split} ({result.num_examples} examples)",
             f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{r['name']:<{width}}  {r['value']:.4f}" for r in rows]
    if result.threshold_source:
        lines.append(f"threshold chosen on: {result.threshold_source}")
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
