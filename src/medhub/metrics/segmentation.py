"""Overlap and boundary metrics for segmentation: Dice, IoU (Jaccard) per class, and the 95th-percentile
Hausdorff distance in millimetres.

Dice = 2|A∩B| / (|A| + |B|) (Dice 1945), IoU = |A∩B| / |A∪B| (Jaccard 1912), each per class and pooled over
every voxel given (pass one case at a time for per-case scores). Empty-empty convention: when a class is absent
from both prediction and ground truth the score is `empty_score`, 1.0 by default (nothing to find and nothing
found is a perfect answer); pass `empty_score=float("nan")` to exclude such classes with `np.nanmean` instead,
as nnU-Net's evaluation does.

Inputs are either label maps (integer arrays of equal shape, any number of dims, `num_classes` given) or
one-hot/boolean masks with the class on `channel_axis` (`num_classes=None`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ._utils import check_same_shape, to_numpy, warn_undefined

__all__ = ["dice", "hausdorff_distance", "hausdorff_distance_95", "iou"]


def _overlap_counts(pred, target, num_classes, channel_axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (intersection, |pred|, |target|) as float64 arrays of length K."""
    pred, target = to_numpy(pred, "prediction"), to_numpy(target, "ground truth")
    check_same_shape(pred, target, "prediction", "ground truth")
    if num_classes is not None:
        if np.issubdtype(pred.dtype, np.floating) or np.issubdtype(target.dtype, np.floating):
            raise InputError("label maps: expected integer labels (argmax the probabilities first)")
        for name, lab in (("prediction", pred), ("ground truth", target)):
            if lab.size and (lab.min() < 0 or lab.max() >= num_classes):
                raise InputError(f"{name}: labels must lie in [0, {num_classes}), got [{lab.min()}, {lab.max()}]")
        # Confusion matrix in one pass: rows = ground truth, columns = prediction.
        cm = np.bincount(target.ravel().astype(np.int64) * num_classes + pred.ravel(), minlength=num_classes**2)
        cm = cm.reshape(num_classes, num_classes).astype(np.float64)
        return np.diag(cm).copy(), cm.sum(0), cm.sum(1)
    if pred.ndim == 0:
        raise InputError("one-hot masks: expected a class axis, got a scalar")
    if not (np.isin(pred, (0, 1)).all() and np.isin(target, (0, 1)).all()):
        raise InputError("one-hot masks: expected 0/1 values; pass num_classes=K for label maps")
    p = np.moveaxis(pred.astype(bool), channel_axis, 0).reshape(pred.shape[channel_axis], -1)
    t = np.moveaxis(target.astype(bool), channel_axis, 0).reshape(p.shape[0], -1)
    return (p & t).sum(1).astype(np.float64), p.sum(1).astype(np.float64), t.sum(1).astype(np.float64)


def dice(pred, target, num_classes: int | None = None, channel_axis: int = 0, empty_score: float = 1.0):
    """Dice coefficient per class, shape (K,); see the module docstring for inputs and the empty convention."""
    inter, p, t = _overlap_counts(pred, target, num_classes, channel_axis)
    denom = p + t
    return np.where(denom > 0, 2 * inter / np.where(denom > 0, denom, 1), empty_score)


def iou(pred, target, num_classes: int | None = None, channel_axis: int = 0, empty_score: float = 1.0):
    """Intersection over union (Jaccard index) per class, shape (K,); same inputs and convention as `dice`."""
    inter, p, t = _overlap_counts(pred, target, num_classes, channel_axis)
    union = p + t - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), empty_score)


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of the mask with a face-neighbour outside it (or on the image border)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _directed_surface_distances(a_surface: np.ndarray, b_surface: np.ndarray, spacing) -> np.ndarray:
    """Distance (mm) from each surface voxel of A to the nearest surface voxel of B, via B's distance transform."""
    dist_to_b = ndimage.distance_transform_edt(~b_surface, sampling=spacing)
    return dist_to_b[a_surface]


def hausdorff_distance(pred, target, spacing=None, percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance between two binary masks (2D or 3D), in the units of `spacing`.

    Surfaces are the mask voxels with a face-neighbour outside the mask; for each surface voxel of one mask the
    Euclidean distance to the nearest surface voxel of the other is read from `scipy.ndimage.
    distance_transform_edt(..., sampling=spacing)` (anisotropic voxels handled exactly). The result is the
    larger of the two directed `percentile`-th percentiles, as in MONAI's `compute_hausdorff_distance`;
    `percentile=100` gives the classical Hausdorff distance. Both masks empty: 0.0; only one empty: inf,
    with an `UndefinedMetricWarning`.
    """
    pred = to_numpy(pred, "prediction").astype(bool)
    target = to_numpy(target, "ground truth").astype(bool)
    check_same_shape(pred, target, "prediction", "ground truth")
    if pred.ndim not in (2, 3):
        raise InputError(f"hausdorff_distance: expected 2D or 3D binary masks, got shape {pred.shape}")
    spacing = (1.0,) * pred.ndim if spacing is None else tuple(float(s) for s in np.broadcast_to(spacing, pred.ndim))
    if any(s <= 0 for s in spacing):
        raise InputError(f"spacing: expected positive voxel sizes (mm), got {spacing}")
    if not 0 <= percentile <= 100:
        raise InputError(f"percentile: expected a value in [0, 100], got {percentile}")
    if not pred.any() and not target.any():
        return 0.0
    if not pred.any() or not target.any():
        warn_undefined("Hausdorff distance with one empty mask is infinite")
        return float("inf")
    ps, ts = _surface(pred), _surface(target)
    d_pt = _directed_surface_distances(ps, ts, spacing)
    d_tp = _directed_surface_distances(ts, ps, spacing)
    return float(max(np.percentile(d_pt, percentile), np.percentile(d_tp, percentile)))


def hausdorff_distance_95(pred, target, spacing=None) -> float:
    """95th-percentile Hausdorff distance (HD95) in mm; see `hausdorff_distance`."""
    return hausdorff_distance(pred, target, spacing=spacing, percentile=95.0)
