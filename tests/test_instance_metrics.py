"""Instance-segmentation measures (medhub.metrics.instances): hand-computed values on small label images, the
empty-image conventions, the histogram IoU against a per-pair loop, and ground truth of dsb2018-nuclei."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medhub import metrics as M
from medhub.errors import InputError

TRUE = np.array([[1, 1, 0, 0, 2, 2],
                 [1, 1, 0, 0, 2, 2],
                 [0, 0, 0, 0, 0, 0],
                 [3, 3, 3, 0, 0, 0]])
PRED = np.array([[5, 5, 0, 0, 0, 7],
                 [5, 5, 5, 0, 0, 7],
                 [0, 0, 0, 0, 0, 0],
                 [0, 0, 0, 0, 9, 9]])


def test_iou_matrix_by_hand():
    iou, true_ids, pred_ids = M.instance_iou(PRED, TRUE)
    assert true_ids.tolist() == [1, 2, 3] and pred_ids.tolist() == [5, 7, 9]
    # 5 covers all of 1 (4 px) plus one more: 4/5; 7 is half of 2: 2/4; 9 lies on background.
    np.testing.assert_array_equal(iou, [[0.8, 0, 0], [0, 0.5, 0], [0, 0, 0]])


def test_scores_by_hand():
    scores = M.instance_scores(PRED, TRUE)
    # t = 0.5: only 1<->5 matches (IoU 0.5 of 2<->7 is not > 0.5): TP 1, FP 2, FN 2.
    assert scores.tp == (1, 1, 1, 1, 1, 1, 0, 0, 0, 0)  # 0.8 > t for t <= 0.75, not for t = 0.8
    assert scores.ap(0.5) == pytest.approx(1 / 5)
    assert scores.precision(0.5) == pytest.approx(1 / 3)
    assert scores.recall(0.5) == pytest.approx(1 / 3)
    assert scores.f1(0.5) == pytest.approx(2 / 6)
    assert scores.dsb_score == pytest.approx(6 * 0.2 / 10)  # 0.12
    assert M.dsb_score(PRED, TRUE) == pytest.approx(0.12)


def test_empty_image_conventions():
    empty = np.zeros_like(TRUE)
    none_found = M.instance_scores(empty, TRUE)
    assert (none_found.dsb_score, none_found.precision(), none_found.recall(), none_found.f1()) == (0, 0, 0, 0)
    false_alarm = M.instance_scores(PRED, empty)
    assert (false_alarm.dsb_score, false_alarm.precision(), false_alarm.recall(), false_alarm.f1()) == (0, 0, 0, 0)
    both = M.instance_scores(empty, empty)
    assert (both.dsb_score, both.precision(), both.recall(), both.f1(), both.ap()) == (1, 1, 1, 1, 1)


def test_mean_over_images_and_groups():
    scores = [M.instance_scores(PRED, TRUE), M.instance_scores(TRUE, TRUE), M.instance_scores(TRUE * 0, TRUE * 0)]
    out = M.mean_instance_scores(scores, ["fluorescence", "histology", "histology"])
    assert out["dsb_score"] == pytest.approx((0.12 + 1 + 1) / 3)
    assert out["dsb_score/fluorescence"] == pytest.approx(0.12)
    assert out["f1_50/histology"] == 1.0 and out["images/histology"] == 2.0


def test_histogram_iou_equals_pairwise_loop():
    rng = np.random.default_rng(0)
    true = ndimage.label(rng.random((40, 50)) > 0.6)[0] * 3  # sparse, non-consecutive ids
    pred = ndimage.label(ndimage.binary_dilation(true > 0) & (rng.random((40, 50)) > 0.1))[0] + 100 * (true > 0)
    iou, true_ids, pred_ids = M.instance_iou(pred, true)
    for i, a in enumerate(true_ids):
        for j, b in enumerate(pred_ids):
            inter = np.sum((true == a) & (pred == b))
            assert iou[i, j] == pytest.approx(inter / np.sum((true == a) | (pred == b)))


def test_bad_input_and_thresholds():
    with pytest.raises(InputError, match="non-negative integers"):
        M.instance_iou(PRED.astype(float), TRUE)
    with pytest.raises(InputError, match="shape mismatch"):
        M.instance_iou(PRED[:2], TRUE)
    with pytest.raises(InputError, match="0.5 <= t < 1"):
        M.instance_scores(PRED, TRUE, thresholds=[0.3])


def _eroded(labels: np.ndarray) -> np.ndarray:
    """Every object without its outer one-pixel ring: a pixel stays when its 4 neighbours share its label."""
    padded = np.pad(labels, 1)
    same = [padded[1 + dy:padded.shape[0] - 1 + dy, 1 + dx:padded.shape[1] - 1 + dx] == labels
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    return np.where(np.logical_and.reduce(same), labels, 0)


@pytest.mark.shared_data
def test_dsb2018_ground_truth(shared_data):
    from PIL import Image

    folder = shared_data / "dsb2018-nuclei" / "labels"
    # the first image of the folder: fluorescence, 256x256, 27 nuclei
    truth = np.asarray(Image.open(folder / "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552.png"))
    assert truth.dtype == np.uint16
    assert M.dsb_score(truth, truth) == 1.0 and M.instance_scores(truth, truth).f1() == 1.0
    shifted = np.zeros_like(truth)
    shifted[:, 1:] = truth[:, :-1]  # one pixel to the right
    eroded = M.instance_scores(_eroded(truth), truth)
    moved = M.instance_scores(shifted, truth)
    # 27 nuclei; without their outer ring the small ones keep less than half their area (IoU <= 0.5): F1@0.5 = 22/27
    assert (eroded.n_true, eroded.n_pred) == (27, 27)
    assert eroded.tp == (22, 22, 22, 20, 18, 17, 9, 0, 0, 0)
    assert eroded.dsb_score == pytest.approx(0.3810, abs=1e-4) and eroded.f1() == pytest.approx(22 / 27)
    # moved by one pixel every nucleus still matches at 0.5; at 0.9 one does, at 0.95 none
    assert moved.tp == (27, 27, 26, 22, 22, 22, 21, 17, 1, 0)
    assert moved.dsb_score == pytest.approx(0.6106, abs=1e-4) and moved.f1() == 1.0
