"""Calibration metrics: expected calibration error (ECE) and the Brier score, and predictive entropy.

Shapes: `y_true` holds class indices (N,) and `probs` probabilities (N, K) whose rows sum to 1, or `y_true` 0/1
labels (N,) with `probs` the positive class's probability (N,) for one binary task (taken as K = 2 columns).

- ECE (Guo et al. 2017, "On calibration of modern neural networks", ICML; Naeini et al. 2015): the top-label
  confidence (max probability) is binned into `n_bins` equal-width bins of (0, 1] (15 as Guo et al.); ECE is the
  sum over bins of (bin size / N) * |accuracy in the bin - mean confidence in the bin|;
- Brier score (Brier 1950) for a binary task given as (N,): the mean of (p - y)^2 over samples, in [0, 1]; for
  (N, K) probabilities: the mean over samples of the sum over classes of (p_k - [y = k])^2, in [0, 2] (Brier's
  original definition; for K = 2 it is twice the binary form);
- `predictive_entropy`: -sum_k p_k log p_k (nats) over the class axis, >= 0, at most log K.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ._utils import to_numpy

__all__ = ["brier_score", "expected_calibration_error", "predictive_entropy"]


def _labels_and_probs(y_true, probs) -> tuple[np.ndarray, np.ndarray, bool]:
    """(class indices (N,) int, probabilities (N, K) float64, given as one binary column)."""
    y, p = to_numpy(y_true, "y_true"), to_numpy(probs, "probs").astype(np.float64)
    if y.ndim != 1 or y.shape[0] == 0 or p.shape[0] != y.shape[0] or p.ndim not in (1, 2):
        raise InputError(f"y_true {y.shape} / probs {p.shape}: expected labels (N,) and probabilities (N,) or (N, K)"
                         " with N > 0")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise InputError("probs: expected probabilities in [0, 1] (apply softmax/sigmoid to logits first)")
    binary = p.ndim == 1
    if binary:
        p = np.stack([1.0 - p, p], axis=1)
    elif not np.allclose(p.sum(1), 1.0, atol=1e-3):
        raise InputError("probs: rows of (N, K) probabilities must sum to 1 (softmax outputs)")
    if not np.array_equal(y, np.round(y)) or y.min() < 0 or y.max() >= p.shape[1]:
        raise InputError(f"y_true: expected class indices in [0, {p.shape[1]})")
    return y.astype(np.int64), p, binary


def expected_calibration_error(y_true, probs, n_bins: int = 15) -> float:
    """Top-label ECE with `n_bins` equal-width confidence bins (see the module docstring)."""
    if not isinstance(n_bins, int) or n_bins < 1:
        raise InputError(f"n_bins: expected a positive integer, got {n_bins!r}")
    y, p, _ = _labels_and_probs(y_true, probs)
    confidence = p.max(1)
    correct = (p.argmax(1) == y).astype(np.float64)
    # Bin i holds confidences in (i/n, (i+1)/n]; a confidence of exactly 0 cannot occur for a top label.
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() / y.size * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def brier_score(y_true, probs) -> float:
    """Binary (N,) probabilities: mean (p - y)^2; (N, K): mean over samples of sum_k (p_k - [y = k])^2."""
    y, p, binary = _labels_and_probs(y_true, probs)
    if binary:
        return float(np.mean((p[:, 1] - y) ** 2))
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(((p - onehot) ** 2).sum(1)))


def predictive_entropy(probs, axis: int = 0) -> np.ndarray:
    """-sum p log p over `axis` (nats, 0 log 0 = 0), e.g. (K, *spatial) probabilities -> (*spatial) entropy."""
    p = np.clip(to_numpy(probs, "probs").astype(np.float64), 0.0, 1.0)
    logs = np.log(np.where(p > 0, p, 1.0))
    return np.maximum(-(p * logs).sum(axis=axis), 0.0)
