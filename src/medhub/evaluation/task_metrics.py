"""The metrics of each task, from predictions: the one set of functions that training logs (`compute_metrics`),
`medhub evaluate` and the model cards all use, so their numbers come from the same code.

- classification: AUROC (mean over classes for multi-label / multi-class), accuracy and F1 at a threshold;
- segmentation: Dice per class (`dice_<label>`) and the mean over the foreground classes (`mean_dice`); for 2D
  two-class maps (membrane / cell, as ISBI 2012) the challenge's `pixel_error` and foreground-restricted
  `rand_error`, and `rand_error_watershed` of the cell instances that `weights_info["instances"]` names;
  nuclei (`weights_info["instances"]` method nuclei_watershed): the 2018 Data Science Bowl score `dsb_score`,
  `ap_50`, `f1_50`, `precision_50`, `recall_50` (means over images), each also per image type (`dsb_score/histology`);
  BraTS region Dice (whole tumour {1,2,3,4}, tumour core {1,3,4}, enhancing {4}: Menze et al., IEEE TMI 2015).
`card_metrics` turns a metrics dict into the `weights_info["metrics"]` rows a model card reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .. import metrics as M
from ..errors import InputError
from ..inference import membrane_watershed, watershed_options
from ..losses.segmentation_loss import crop_to_output

SEGMENTATION = "image-segmentation"
CLASSIFICATION = "image-classification"
BRATS_REGIONS = {"whole_tumor": (1, 2, 3, 4), "tumor_core": (1, 3, 4), "enhancing_tumor": (4,)}
# metric name -> the Hub's metric `type` id (https://hf.co/metrics)
METRIC_TYPES = {"auroc": "roc_auc", "accuracy": "accuracy", "f1": "f1", "dice": "dice", "threshold": "threshold",
                "pixel": "pixel_error", "rand": "rand_error", "dsb": "dsb_score", "ap": "average_precision",
                "precision": "precision", "recall": "recall"}


def task_of(model) -> str:
    """"image-segmentation" or "image-classification": the model class's pipeline tag."""
    tag = getattr(model, "pipeline_tag", "")
    if tag not in (SEGMENTATION, CLASSIFICATION):
        raise InputError(f"{type(model).__name__}: pipeline_tag {tag!r} has no medhub metrics")
    return tag


def label_names(config) -> list[str]:
    return [str(config.id2label.get(i, i)).replace(" ", "_") for i in range(config.num_labels)]


# -- classification ----------------------------------------------------------------------------------------
def class_scores(probs: np.ndarray, labels: np.ndarray, problem_type: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(y_true 0/1, y_score) as `medhub.metrics` takes them: (N,) for 2 classes, else (N, K); `probs` are the
    model's probabilities (softmax, or sigmoid for multi-label)."""
    probs = np.asarray(probs, dtype=np.float64)
    if problem_type == "multi_label_classification":
        return np.asarray(labels).astype(np.int64), probs
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if probs.shape[1] == 2:
        return labels, probs[:, 1]
    return np.eye(probs.shape[1], dtype=np.int64)[labels], probs


def probabilities_of(logits: np.ndarray, problem_type: str | None) -> np.ndarray:
    logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    if problem_type == "multi_label_classification":
        return torch.sigmoid(logits).numpy()
    return torch.softmax(logits, dim=-1).numpy()


def classification_metrics(probs, labels, problem_type: str | None, names: list[str],
                           threshold: float | np.ndarray = 0.5) -> dict[str, float]:
    y, s = class_scores(probs, labels, problem_type)
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


# -- segmentation ------------------------------------------------------------------------------------------
def segmentation_metrics(pred, labels, names: list[str]) -> dict[str, float]:
    """Dice per class over all pixels of `pred` class maps vs `labels`: arrays (N, *out) vs (N, *in)
    (centre-cropped to the output), or lists of per-image maps of any sizes (pooled)."""
    if isinstance(pred, list):
        pred = np.concatenate([np.asarray(p).reshape(-1) for p in pred])[None]
        labels = np.concatenate([np.asarray(t).reshape(-1) for t in labels])[None]
    pred = torch.as_tensor(np.asarray(pred)).long()
    target = crop_to_output(torch.as_tensor(np.asarray(labels)), tuple(pred.shape[1:]))
    scores = M.dice(pred.numpy(), target.long().numpy(), num_classes=len(names))
    out = {f"dice_{n}": float(v) for n, v in zip(names, scores)}
    foreground = scores[1:] if len(scores) > 1 else scores
    out["mean_dice"] = float(np.mean(foreground))
    return out


def isbi_metrics(pred: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """ISBI 2012 pixel error and foreground-restricted Rand error (class 1 = cell interior), mean over images."""
    pixel = [M.pixel_error(p.astype(np.float32), t.astype(np.float32)) for p, t in zip(pred, labels)]
    rand = [M.foreground_restricted_rand_error(p.astype(np.float32), t.astype(np.float32))
            for p, t in zip(pred, labels)]
    return {"pixel_error": float(np.mean(pixel)), "rand_error": float(np.nanmean(rand))}


def instance_metrics(cells: list[np.ndarray], labels: list[np.ndarray]) -> dict[str, float]:
    """Foreground-restricted Rand error of cell instance maps (e.g. `membrane_watershed`'s), mean over images:
    `rand_error_watershed`."""
    rand = [1.0 - M.segmentation_rand_scores(c, t.astype(np.float32)).v_rand for c, t in zip(cells, labels)]
    return {"rand_error_watershed": float(np.nanmean(rand))}


def nuclei_metrics(scores: list, groups: list[str]) -> dict[str, float]:
    """The DSB score and the measures at IoU 0.5 of per-image `medhub.metrics.InstanceScores`: means over the
    images, and per group (image type) as "<measure>/<group>"."""
    return {k: v for k, v in M.mean_instance_scores(scores, groups).items() if not k.startswith("images/")}


def watershed_cells(cell_probability: np.ndarray, instances: dict) -> np.ndarray:
    """The cell instances `weights_info["instances"]` describes, from one cell probability map."""
    return membrane_watershed(cell_probability, **watershed_options(instances))


def region_dice(pred: np.ndarray, label: np.ndarray, num_labels: int, names: list[str]) -> dict[str, float]:
    """BraTS region Dice (see the module docstring) and the Dice of every foreground label, one subject."""
    out = {f"dice_{region}": float(M.dice(np.isin(pred, labels).astype(np.int64),
                                          np.isin(label, labels).astype(np.int64), num_classes=2)[1])
           for region, labels in BRATS_REGIONS.items()}
    per_label = M.dice(pred, label, num_classes=num_labels)
    out.update({f"dice_{n}": float(v) for n, v in zip(names[1:], per_label[1:])})
    return out


def task_metrics(task: str, config, predictions, labels, threshold=0.5) -> dict[str, float]:
    """Classification: `predictions` are probabilities; segmentation: class maps."""
    names = label_names(config)
    if task == SEGMENTATION:
        return segmentation_metrics(predictions, labels, names)
    return classification_metrics(predictions, labels, getattr(config, "problem_type", None), names, threshold)


# -- during training (Trainer hooks) -------------------------------------------------------------------------
def compute_metrics_fn(model, threshold=0.5) -> Callable:
    """A `compute_metrics` for `transformers.Trainer` (expects `preprocess_logits_fn` for segmentation)."""
    task, config = task_of(model), model.config

    def compute_metrics(eval_pred) -> dict[str, float]:
        predictions = eval_pred.predictions
        if task == CLASSIFICATION:
            predictions = probabilities_of(predictions, getattr(config, "problem_type", None))
        return task_metrics(task, config, predictions, eval_pred.label_ids, threshold)

    return compute_metrics


def preprocess_logits_fn(model) -> Callable | None:
    """Segmentation: keep the argmax class map instead of every logit (less memory, less to gather)."""
    if task_of(model) != SEGMENTATION:
        return None

    def preprocess(logits, labels):
        logits = logits[0] if isinstance(logits, tuple) else logits
        return logits.argmax(dim=1)

    return preprocess


# -- reporting ---------------------------------------------------------------------------------------------
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


__all__ = ["BRATS_REGIONS", "CLASSIFICATION", "METRIC_TYPES", "SEGMENTATION", "card_metrics", "class_scores",
           "classification_metrics", "compute_metrics_fn", "instance_metrics", "isbi_metrics", "label_names",
           "nuclei_metrics", "preprocess_logits_fn", "probabilities_of", "region_dice", "segmentation_metrics",
           "task_metrics", "task_of", "watershed_cells"]
