"""Calibration of a classifier on the validation split: temperature scaling (Guo et al. 2017, ICML) and the
decision threshold chosen on the calibrated probabilities.

`fit_temperature(logits, labels)` minimises the validation negative log-likelihood of softmax(logits / T) (or
sigmoid for one output / multi-label) over T by a bounded 1-D search on log T (the NLL is smooth and has one
minimum in T). `calibrate_classifier(model, data)` measures the model through the path users run (processor,
`model.infer`) without a temperature, fits T on the log-probabilities (softmax(log p / T) = softmax(z / T), since
log p differs from the logits z by a per-sample constant), stores it in `weights_info["calibration"]`, measures
again with it, chooses the threshold on the calibrated probabilities and returns the before/after numbers that
the model card shows. Temperature scaling leaves the ranking of a binary classifier's scores, so its AUROC,
unchanged; the probabilities (ECE, Brier score) and therefore the threshold change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from .. import metrics as M
from ..data.recipe_data import load_rows
from ..errors import InputError
from ..inference.inferers import output_activation
from ..metrics.calibration import brier_score, expected_calibration_error
from .evaluate import classify_rows
from .task_metrics import class_scores

ECE_BINS = 15
LOG_T_RANGE = (np.log(0.05), np.log(20.0))
METHOD = ("temperature scaling (Guo et al. 2017): the logits divided by T before the softmax, T minimising the "
          "negative log-likelihood of the validation split")

__all__ = ["ECE_BINS", "calibrate_classifier", "calibration_metrics", "fit_temperature", "logits_from_probabilities"]


def _nll(logits: torch.Tensor, labels: torch.Tensor, activation: str, t: float) -> float:
    if activation == "sigmoid":
        return float(torch.nn.functional.binary_cross_entropy_with_logits(logits / t, labels.to(logits.dtype)))
    return float(torch.nn.functional.cross_entropy(logits / t, labels))


def fit_temperature(logits, labels, activation: str = "softmax") -> float:
    """T in [0.05, 20] minimising the mean NLL of activation(logits / T): logits (N, K), labels (N,) class indices
    (softmax) or (N, K) / (N,) 0/1 targets (sigmoid)."""
    if activation not in ("softmax", "sigmoid"):
        raise InputError(f"activation: expected 'softmax' or 'sigmoid', got {activation!r}")
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(labels)).long()
    if activation == "sigmoid":
        y = y.reshape(z.shape)
    elif z.ndim != 2 or y.shape != (z.shape[0],):
        raise InputError(f"logits {tuple(z.shape)} / labels {tuple(y.shape)}: expected (N, K) and (N,)")
    if not torch.isfinite(z).all():
        raise InputError("logits: contain NaN or infinite values")
    found = minimize_scalar(lambda log_t: _nll(z, y, activation, float(np.exp(log_t))), bounds=LOG_T_RANGE,
                            method="bounded", options={"xatol": 1e-5})
    return float(np.exp(found.x))


def logits_from_probabilities(probs: np.ndarray, activation: str) -> np.ndarray:
    """Logits up to a per-sample constant (softmax) or exactly (sigmoid) from probabilities (clipped at 1e-12)."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0 - 1e-12)
    return np.log(p) if activation == "softmax" else np.log(p) - np.log1p(-p)


def calibration_metrics(probs: np.ndarray, labels: np.ndarray, problem_type: str | None, threshold) -> dict:
    """AUROC, accuracy at `threshold`, ECE (15 bins) and Brier score of validation probabilities."""
    y, s = class_scores(probs, labels, problem_type)
    if y.ndim != 1:
        raise InputError("calibration metrics: implemented for binary and single-label classifiers")
    binary = probs.shape[1] == 2
    classes = np.asarray(labels).reshape(-1).astype(np.int64)
    scored = s if binary else probs
    return {"auroc": float(M.roc_auc(y, s)), "accuracy": float(M.accuracy(y, s, threshold)),
            "ece": expected_calibration_error(classes, scored, n_bins=ECE_BINS),
            "brier": brier_score(classes, scored)}


def calibrate_classifier(model, data: dict[str, Any], *, batch_size: int = 64, criterion: str = "f1") -> dict:
    """Fit and store the temperature and threshold on `data`'s validation split (see the module docstring).

    Updates `model.config.weights_info` ("calibration", "threshold") and returns the "calibration" entry."""
    if output_activation(model) != "softmax" or model.config.num_labels != 2:
        raise InputError(f"{type(model).__name__}: calibration is implemented for 2-class softmax classifiers")
    info = dict(model.config.weights_info or {})
    previous = info.pop("calibration", None) or {}
    # The uncalibrated model's threshold: the one stored before any calibration (a rerun keeps comparing to it).
    old_threshold = float((previous.get("before") or {}).get("threshold", info.get("threshold", 0.5)))
    problem = getattr(model.config, "problem_type", None)
    rows = load_rows(data, "validation")
    model.config.weights_info = info
    before, labels = classify_rows(model, rows, batch_size)
    t = round(fit_temperature(logits_from_probabilities(before, "softmax"), labels, "softmax"), 6)
    model.config.weights_info = {**info, "calibration": {"temperature": t}}
    after, _ = classify_rows(model, rows, batch_size)  # measured as `medhub predict` runs the calibrated model
    y, s = class_scores(after, labels, problem)
    threshold = float(M.choose_threshold(y, s, criterion=criterion))
    entry = {"method": METHOD, "temperature": t, "split": "validation", "num_examples": int(len(labels)),
             "ece_bins": ECE_BINS, "threshold_criterion": criterion,
             "before": {**_rounded(calibration_metrics(before, labels, problem, old_threshold)),
                        "threshold": old_threshold},
             "after": {**_rounded(calibration_metrics(after, labels, problem, threshold)), "threshold": threshold}}
    model.config.weights_info = {**info, "calibration": entry, "threshold": threshold}
    return entry


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in values.items()}
