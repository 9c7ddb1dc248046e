"""Metrics for CheXNet-style binary and multi-label classifiers: AUROC, accuracy, F1 and threshold choice.

Shapes: `y_true` holds 0/1 labels and `y_score` scores (probabilities or logits), both (N,) for one binary task
or (N, K) for K labels scored independently (multi-label, one column per finding as in CheXNet). Per-class
results come back as a (K,) array, binary results as a float. Torch tensors and numpy arrays are accepted.

AUROC is computed as the Mann-Whitney U statistic with average ranks for tied scores, which equals the
trapezoidal area under the ROC curve with tied scores collapsed into one point; this is what
`sklearn.metrics.roc_auc_score` returns (Hanley & McNeil 1982, Radiology 143:29). A class whose labels are
all 0 or all 1 has no ROC curve: its AUROC is NaN, with an `UndefinedMetricWarning`, and the mean AUROC
excludes it (CheXNet's reported mean is over the 14 findings, each present in the test set).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from ..errors import InputError
from ._utils import check_same_shape, to_numpy, warn_undefined

__all__ = [
    "accuracy",
    "choose_threshold",
    "f1_at_threshold",
    "mean_auroc",
    "per_class_auroc",
    "roc_auc",
]


def _labels_and_scores(y_true, y_score) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validate and return (labels (N, K) bool, scores (N, K) float64, was_1d)."""
    y_true, y_score = to_numpy(y_true, "y_true"), to_numpy(y_score, "y_score")
    check_same_shape(y_true, y_score, "y_true", "y_score")
    if y_true.ndim not in (1, 2) or y_true.shape[0] == 0:
        raise InputError(f"y_true: expected shape (N,) or (N, K) with N > 0, got {y_true.shape}")
    if not np.isin(y_true, (0, 1)).all():
        raise InputError("y_true: expected binary labels 0/1 (one column per label for multi-label data)")
    y_score = y_score.astype(np.float64)
    if not np.isfinite(y_score).all():
        raise InputError("y_score: contains NaN or infinite values")
    was_1d = y_true.ndim == 1
    if was_1d:
        y_true, y_score = y_true[:, None], y_score[:, None]
    return y_true.astype(bool), y_score, was_1d


def _thresholds(threshold, num_classes: int) -> np.ndarray:
    t = np.asarray(to_numpy(threshold, "threshold"), dtype=np.float64)
    if t.ndim > 1 or t.size not in (1, num_classes):
        raise InputError(f"threshold: expected a scalar or one value per class ({num_classes}), got shape {t.shape}")
    return np.broadcast_to(t.reshape(-1), (num_classes,))


def _auroc_column(y: np.ndarray, s: np.ndarray, k: int) -> float:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        warn_undefined(f"AUROC of class {k} is undefined: only one label value ({int(y[0])}) present; NaN returned")
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def per_class_auroc(y_true, y_score) -> np.ndarray:
    """AUROC of each column of (N, K) labels/scores; NaN (with a warning) for a class with one label value."""
    y, s, _ = _labels_and_scores(y_true, y_score)
    return np.array([_auroc_column(y[:, k], s[:, k], k) for k in range(y.shape[1])])


def roc_auc(y_true, y_score) -> float:
    """AUROC of one binary task (N,); equals `sklearn.metrics.roc_auc_score`, ties included."""
    y, s, was_1d = _labels_and_scores(y_true, y_score)
    if not was_1d:
        raise InputError(f"roc_auc: expected 1-D y_true/y_score, got {y.shape}; use per_class_auroc for (N, K)")
    return _auroc_column(y[:, 0], s[:, 0], 0)


def mean_auroc(y_true, y_score) -> float:
    """Mean of the per-class AUROCs over the classes where it is defined (NaN classes excluded)."""
    aucs = per_class_auroc(y_true, y_score)
    defined = aucs[~np.isnan(aucs)]
    if defined.size == 0:
        warn_undefined("mean AUROC is undefined: no class has both label values; NaN returned")
        return float("nan")
    return float(defined.mean())


def _confusion(y: np.ndarray, s: np.ndarray, threshold) -> tuple[np.ndarray, ...]:
    """Counts per class with the prediction rule `score >= threshold`."""
    pred = s >= _thresholds(threshold, y.shape[1])[None, :]
    tp = (pred & y).sum(0)
    fp = (pred & ~y).sum(0)
    fn = (~pred & y).sum(0)
    tn = (~pred & ~y).sum(0)
    return tp, fp, fn, tn


def _result(values: np.ndarray, was_1d: bool):
    return float(values[0]) if was_1d else values


def accuracy(y_true, y_score, threshold=0.5):
    """Fraction of samples with `(score >= threshold) == label`, per class (threshold: scalar or one per class)."""
    y, s, was_1d = _labels_and_scores(y_true, y_score)
    tp, fp, fn, tn = _confusion(y, s, threshold)
    return _result((tp + tn) / y.shape[0], was_1d)


def f1_at_threshold(y_true, y_score, threshold=0.5):
    """F1 = 2TP / (2TP + FP + FN) of `score >= threshold`, per class; 0 when TP + FP + FN = 0 (sklearn's
    `zero_division=0` convention, so an all-negative class predicted all-negative scores 0, with a warning)."""
    y, s, was_1d = _labels_and_scores(y_true, y_score)
    tp, fp, fn, _ = _confusion(y, s, threshold)
    denom = 2 * tp + fp + fn
    if (denom == 0).any():
        warn_undefined(f"F1 undefined (no positives, none predicted) for classes {np.flatnonzero(denom == 0)}; 0")
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return _result(f1.astype(np.float64), was_1d)


def _best_threshold(y: np.ndarray, s: np.ndarray, criterion: str, k: int) -> float:
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        warn_undefined(f"threshold of class {k} cannot be chosen: only one label value present; NaN returned")
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Last index of each run of equal scores: predicting `score >= s_sorted[i]` marks exactly 0..i positive.
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tp = np.cumsum(y_sorted)[ends].astype(np.float64)
    fp = (ends + 1) - tp
    if criterion == "f1":
        value = 2 * tp / (2 * tp + fp + (n_pos - tp))
    else:  # Youden's J = sensitivity + specificity - 1 = TPR - FPR
        value = tp / n_pos - fp / n_neg
    return float(s_sorted[ends][int(np.argmax(value))])


def choose_threshold(y_true, y_score, criterion: str = "f1"):
    """Threshold per class maximising F1 or Youden's J on validation data (rule: positive if score >= threshold).

    Candidates are the distinct validation scores, so the returned value is itself a score; among equally good
    thresholds the highest (most specific) one is returned. Use it with `f1_at_threshold`/`accuracy` on test data.
    """
    if criterion not in ("f1", "youden"):
        raise InputError(f"criterion: expected 'f1' or 'youden', got {criterion!r}")
    y, s, was_1d = _labels_and_scores(y_true, y_score)
    best = np.array([_best_threshold(y[:, k], s[:, k], criterion, k) for k in range(y.shape[1])])
    return _result(best, was_1d)
