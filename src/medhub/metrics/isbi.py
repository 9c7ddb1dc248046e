"""The ISBI 2012 EM segmentation challenge measures: pixel error and foreground-restricted Rand error.

Definitions follow Arganda-Carreras et al. 2015, "Crowdsourcing the creation of image segmentation algorithms
for connectomics", Front. Neuroanat. 9:142, as implemented by the challenge's Fiji script
(trainableSegmentation.metrics.RandError, `foregroundRestrictedStatsN2`):

* Both maps are binarised with `value > threshold` (ground truth: cell interior 255 / membrane 0; prediction:
  probability of cell interior). Segments are the 4-connected components of the foreground of each 2D map.
* p_ij = fraction of the ground-truth-foreground pixels lying in ground-truth segment j and predicted segment i;
  t_j = sum_i p_ij (ground-truth sizes), s_i = sum_j p_ij (predicted sizes). Ground-truth background pixels are
  ignored.
* Background convention (Fiji script): a ground-truth-foreground pixel the prediction calls background is its
  own singleton predicted segment, contributing (1/n)^2 to both sum p_ij^2 and sum s_i^2. Predicting membrane
  inside a cell therefore costs a split, never a merge.
* V_split = sum p_ij^2 / sum t_j^2, V_merge = sum p_ij^2 / sum s_i^2,
  V_rand = sum p_ij^2 / (alpha sum s_i^2 + (1 - alpha) sum t_j^2); alpha = 0.5 is the F-score of the two.
  Rand error = 1 - V_rand.

The challenge reported the best value over thresholds 0.0, 0.1, ..., 0.9 of the proposal; pass `threshold`
for one of them. `segmentation_rand_scores` scores a predicted label map (an instance segmentation, e.g. a
watershed of the probability map) with the same conventions, its label 0 playing the predicted background.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ._utils import check_same_shape, dense_labels, to_numpy, warn_undefined

__all__ = [
    "RandScores",
    "foreground_restricted_rand_error",
    "foreground_restricted_rand_scores",
    "pixel_error",
    "segmentation_rand_scores",
]

_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def _image_pair(pred, target, pred_name: str = "prediction") -> tuple[np.ndarray, np.ndarray]:
    pred, target = to_numpy(pred, pred_name), to_numpy(target, "ground truth")
    check_same_shape(pred, target, pred_name, "ground truth")
    if pred.ndim != 2:
        raise InputError(f"ISBI metrics: expected one 2D (H, W) image per call, got shape {pred.shape}")
    return pred, target


def _binarised_pair(pred, target, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _image_pair(pred, target)
    return pred > threshold, target > threshold


def pixel_error(pred, target, threshold: float = 0.5) -> float:
    """1 - fraction of pixels whose binarised prediction equals the binarised ground truth (`value > threshold`)."""
    p, t = _binarised_pair(pred, target, threshold)
    return float(1.0 - np.mean(p == t))


class RandScores(NamedTuple):
    v_rand: float
    v_split: float
    v_merge: float


def foreground_restricted_rand_scores(pred, target, threshold: float = 0.5, alpha: float = 0.5) -> RandScores:
    """V_rand (alpha-weighted), V_split and V_merge of one 2D image; see the module docstring."""
    p, t = _binarised_pair(pred, target, threshold)
    pred_segments, _ = ndimage.label(p, structure=_FOUR_CONNECTED)
    return _rand_scores(pred_segments, t, alpha)


def segmentation_rand_scores(segments, target, threshold: float = 0.5, alpha: float = 0.5) -> RandScores:
    """The same scores for a predicted *label map* (0 = boundary/background, 1..n = segments), e.g. the
    output of `medhub.inference.membrane_watershed`, taken as given rather than re-labelled; only the ground
    truth is binarised (`value > threshold`) and split into 4-connected segments."""
    segments, target = _image_pair(segments, target, "predicted segments")
    if not np.issubdtype(segments.dtype, np.integer) or (segments.size and segments.min() < 0):
        raise InputError(f"predicted segments: expected non-negative integer labels, got dtype {segments.dtype}")
    return _rand_scores(dense_labels(segments)[0], target > threshold, alpha)


def _rand_scores(pred_segments: np.ndarray, t: np.ndarray, alpha: float) -> RandScores:
    """Scores of `pred_segments` (labels 0..n without gaps, 0 = predicted background) against the binary `t`."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha: expected a value in [0, 1], got {alpha}")
    gt_segments, _ = ndimage.label(t, structure=_FOUR_CONNECTED)
    n_pred = int(pred_segments.max())
    fg = gt_segments > 0
    n = int(fg.sum())
    if n == 0:
        warn_undefined("foreground-restricted Rand scores are undefined: the ground truth has no foreground")
        return RandScores(float("nan"), float("nan"), float("nan"))
    n_gt = int(gt_segments.max()) + 1
    rows, cols = pred_segments[fg], gt_segments[fg]  # predicted segment i (0 = background), true segment j
    counts = np.bincount(rows.astype(np.int64) * n_gt + cols, minlength=(n_pred + 1) * n_gt)
    pij = counts.reshape(n_pred + 1, n_gt).astype(np.float64) / n
    singletons = pij[0].sum() / n  # each background-predicted pixel: its own segment of mass 1/n
    sum_p2 = float((pij[1:] ** 2).sum() + singletons)
    sum_s2 = float((pij[1:].sum(1) ** 2).sum() + singletons)
    sum_t2 = float((pij.sum(0) ** 2).sum())
    return RandScores(
        v_rand=sum_p2 / (alpha * sum_s2 + (1.0 - alpha) * sum_t2),
        v_split=sum_p2 / sum_t2,
        v_merge=sum_p2 / sum_s2,
    )


def foreground_restricted_rand_error(pred, target, threshold: float = 0.5, alpha: float = 0.5) -> float:
    """1 - V_rand: the ISBI 2012 foreground-restricted Rand error of one 2D image."""
    return 1.0 - foreground_restricted_rand_scores(pred, target, threshold, alpha).v_rand
