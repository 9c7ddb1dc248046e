"""Instance-segmentation measures of label images (0 = background, 1..n = one object each): the 2018 Data
Science Bowl score and precision / recall / F1 / AP at an IoU threshold (Caicedo et al., Nature Methods 2019).

* IoU of every true object with every predicted object, from one joint histogram of the two label images
  (`np.bincount` of the pair index of every pixel): no loop over pairs, labels need not be consecutive.
* Matching at a threshold t >= 0.5: a true and a predicted object match when IoU > t (strictly). Two objects
  of one image do not overlap, so an object can have IoU > 0.5 with at most one object of the other image:
  the matching is one-to-one without any assignment step. Thresholds below 0.5 are refused (they would need
  an assignment, e.g. Hungarian, and the DSB never used them).
* TP = matched pairs, FP = predicted objects without a match, FN = true objects without a match;
  precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN),
  AP (the DSB's "average precision" of one threshold, not an area under a curve) = TP / (TP + FP + FN).
* DSB score of an image = the mean of AP over t = 0.5, 0.55, ..., 0.95; of a data set = the mean over images
  (the Kaggle leaderboard's convention; every measure here is averaged over images the same way).
* Empty images: a ratio whose denominator is 0 is 1.0 when both images have no object (nothing to find and
  nothing falsely found) and 0.0 otherwise (e.g. the precision of an empty prediction of an image with nuclei).
  So an empty prediction of an image with nuclei scores 0, any object predicted on an image without nuclei
  scores 0, and an empty prediction of an empty image scores 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ._utils import check_same_shape, dense_labels, to_numpy

__all__ = ["DSB_THRESHOLDS", "InstanceScores", "dsb_score", "instance_iou", "instance_scores", "match_counts",
           "mean_instance_scores"]

DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # 0.5, 0.55, ..., 0.95


def _label_image(x, name: str) -> np.ndarray:
    array = to_numpy(x, name)
    if not np.issubdtype(array.dtype, np.integer) or (array.size and array.min() < 0):
        raise InputError(f"{name}: expected a label image of non-negative integers (0 = background), got dtype "
                         f"{array.dtype}" + (f" with minimum {array.min()}" if array.size else ""))
    return array


def instance_iou(pred, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(IoU (n_true, n_pred), the true object ids, the predicted object ids) of two label images of one shape."""
    pred, target = _label_image(pred, "predicted instances"), _label_image(target, "true instances")
    check_same_shape(pred, target, "predicted instances", "true instances")
    p, pred_ids = dense_labels(pred.ravel())
    t, true_ids = dense_labels(target.ravel())
    n_p, n_t = len(pred_ids) + 1, len(true_ids) + 1
    joint = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p)
    area_t, area_p = joint.sum(1), joint.sum(0)
    inter = joint[1:, 1:].astype(np.float64)
    union = area_t[1:, None] + area_p[None, 1:] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0), true_ids, pred_ids


def match_counts(iou: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """(TP, FP, FN) of an IoU matrix (n_true, n_pred) at `threshold` (match: IoU > threshold, one-to-one)."""
    if not 0.5 <= threshold < 1.0:
        raise InputError(f"IoU threshold {threshold}: expected 0.5 <= t < 1 (from 0.5 up, IoU > t matches an "
                         "object to at most one other, so no assignment is needed)")
    tp = int(np.count_nonzero(iou > threshold))
    return tp, iou.shape[1] - tp, iou.shape[0] - tp


def _ratio(numerator: int, denominator: int, both_empty: bool) -> float:
    if denominator == 0:
        return 1.0 if both_empty else 0.0
    return numerator / denominator


@dataclass(frozen=True)
class InstanceScores:
    """Counts of one image at each threshold; the measures are properties (conventions: module docstring)."""

    n_true: int
    n_pred: int
    thresholds: tuple[float, ...]
    tp: tuple[int, ...]

    def _at(self, threshold: float) -> tuple[int, int, int]:
        if threshold not in self.thresholds:
            raise InputError(f"IoU threshold {threshold}: these scores were counted at {list(self.thresholds)}")
        tp = self.tp[self.thresholds.index(threshold)]
        return tp, self.n_pred - tp, self.n_true - tp

    @property
    def _empty(self) -> bool:
        return self.n_true == 0 and self.n_pred == 0

    def ap(self, threshold: float = 0.5) -> float:
        tp, fp, fn = self._at(threshold)
        return _ratio(tp, tp + fp + fn, self._empty)

    def precision(self, threshold: float = 0.5) -> float:
        tp, fp, _ = self._at(threshold)
        return _ratio(tp, tp + fp, self._empty)

    def recall(self, threshold: float = 0.5) -> float:
        tp, _, fn = self._at(threshold)
        return _ratio(tp, tp + fn, self._empty)

    def f1(self, threshold: float = 0.5) -> float:
        tp, fp, fn = self._at(threshold)
        return _ratio(2 * tp, 2 * tp + fp + fn, self._empty)

    @property
    def dsb_score(self) -> float:
        """Mean AP over the thresholds (the DSB score when they are DSB_THRESHOLDS)."""
        return float(np.mean([self.ap(t) for t in self.thresholds]))

    def as_dict(self) -> dict[str, float]:
        return {"dsb_score": self.dsb_score, "ap_50": self.ap(0.5), "f1_50": self.f1(0.5),
                "precision_50": self.precision(0.5), "recall_50": self.recall(0.5)}


def instance_scores(pred, target, thresholds: Sequence[float] = DSB_THRESHOLDS) -> InstanceScores:
    """The counts of one predicted label image against the true one at every threshold."""
    thresholds = tuple(float(t) for t in thresholds)
    if not thresholds:
        raise InputError("instance_scores: expected at least one IoU threshold")
    iou, true_ids, pred_ids = instance_iou(pred, target)
    tp = tuple(match_counts(iou, t)[0] for t in thresholds)
    return InstanceScores(n_true=len(true_ids), n_pred=len(pred_ids), thresholds=thresholds, tp=tp)


def dsb_score(pred, target) -> float:
    """The 2018 Data Science Bowl score of one image: mean over IoU thresholds 0.5:0.05:0.95 of TP/(TP+FP+FN)."""
    return instance_scores(pred, target).dsb_score


def mean_instance_scores(scores: Sequence[InstanceScores], groups: Sequence[str] | None = None) -> dict[str, float]:
    """The mean over images of every measure of `InstanceScores.as_dict` ("dsb_score", "f1_50", ...), and with
    `groups` (one name per image, e.g. its image type) the same per group as "<measure>/<group>", plus
    "images/<group>" (the number of images of the group)."""
    if not scores:
        raise InputError("mean_instance_scores: no image scores to average")
    if groups is not None and len(groups) != len(scores):
        raise InputError(f"mean_instance_scores: {len(groups)} group names for {len(scores)} images")
    rows = [s.as_dict() for s in scores]
    out = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    for group in sorted(set(groups or ())):
        chosen = [r for r, g in zip(rows, groups) if g == group]
        out.update({f"{key}/{group}": float(np.mean([r[key] for r in chosen])) for key in rows[0]})
        out[f"images/{group}"] = float(len(chosen))
    return out
