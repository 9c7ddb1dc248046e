"""Input handling shared by the metric modules: tensors or arrays in, validated numpy arrays out."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on this input (e.g. AUROC of a class with one label value) and is reported as NaN."""


def to_numpy(x, name: str) -> np.ndarray:
    """Accept a numpy array, a torch tensor (any device) or a nested list; never copies more than needed."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == object:
        raise InputError(f"{name}: expected a numeric array or tensor, got an object array")
    return x


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"shape mismatch between {name_a} {a.shape} and {name_b} {b.shape}: expected equal shapes")


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels renumbered 0..n without gaps, int64 and of `labels`' shape, with 0 kept for the background; the
    original ids of 1..n)."""
    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    inverse = inverse.reshape(labels.shape).astype(np.int64)
    if ids.size == 0 or ids[0] != 0:  # no background pixel: shift so that index 0 stays "background"
        return inverse + 1, ids
    return inverse, ids[1:]


def warn_undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)
