"""Metrics against scikit-learn references and hand-computed values."""

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.spatial.distance import cdist
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.metrics.cluster import contingency_matrix

from medhub.errors import InputError
from medhub.metrics import (
    UndefinedMetricWarning,
    accuracy,
    choose_threshold,
    dice,
    f1_at_threshold,
    foreground_restricted_rand_error,
    foreground_restricted_rand_scores,
    hausdorff_distance,
    hausdorff_distance_95,
    iou,
    mean_auroc,
    per_class_auroc,
    pixel_error,
    roc_auc,
)


@pytest.fixture
def multilabel():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 5)) < [0.1, 0.3, 0.5, 0.7, 0.2]).astype(int)
    # Rounded scores create many ties; make them informative so the AUROCs differ from 0.5.
    s = np.round(0.3 * y + rng.random((200, 5)), 1)
    return y, s


# --- classification ---------------------------------------------------------------------------------------


def test_auroc_matches_sklearn_with_ties(multilabel):
    y, s = multilabel
    expected = [roc_auc_score(y[:, k], s[:, k]) for k in range(5)]
    np.testing.assert_allclose(per_class_auroc(y, s), expected, rtol=0, atol=1e-12)
    assert mean_auroc(y, s) == pytest.approx(np.mean(expected), abs=1e-12)
    assert roc_auc(torch.tensor(y[:, 1]), torch.tensor(s[:, 1])) == pytest.approx(expected[1], abs=1e-12)


def test_auroc_hand_computed_ties():
    # Positive scores {0.5, 0.8}, negatives {0.5, 0.2}: pairs (0.5,0.5) tie = 1/2, others 3 wins -> 3.5 / 4.
    assert roc_auc([1, 1, 0, 0], [0.5, 0.8, 0.5, 0.2]) == pytest.approx(0.875)


def test_auroc_single_label_class_is_nan_and_excluded(multilabel):
    y, s = multilabel
    y = y.copy()
    y[:, 2] = 1
    with pytest.warns(UndefinedMetricWarning, match="class 2"):
        aucs = per_class_auroc(y, s)
    assert np.isnan(aucs[2]) and not np.isnan(aucs[[0, 1, 3, 4]]).any()
    with pytest.warns(UndefinedMetricWarning):
        assert mean_auroc(y, s) == pytest.approx(np.mean(aucs[[0, 1, 3, 4]]), abs=1e-12)


def test_accuracy_and_f1_match_sklearn(multilabel):
    y, s = multilabel
    thresholds = np.array([0.3, 0.5, 0.7, 0.9, 0.6])
    pred = s >= thresholds
    np.testing.assert_allclose(accuracy(y, s, thresholds), [accuracy_score(y[:, k], pred[:, k]) for k in range(5)])
    np.testing.assert_allclose(f1_at_threshold(y, s, thresholds), [f1_score(y[:, k], pred[:, k]) for k in range(5)])
    assert f1_at_threshold(y[:, 0], s[:, 0], 0.5) == pytest.approx(f1_score(y[:, 0], s[:, 0] >= 0.5))


@pytest.mark.parametrize("criterion", ["f1", "youden"])
def test_choose_threshold_is_the_best_candidate(multilabel, criterion):
    y, s = multilabel
    chosen = choose_threshold(y, s, criterion=criterion)
    for k in range(5):
        candidates = np.unique(s[:, k])

        def score(t):
            p = s[:, k] >= t
            if criterion == "f1":
                return f1_score(y[:, k], p)
            return p[y[:, k] == 1].mean() - p[y[:, k] == 0].mean()

        values = [score(t) for t in candidates]
        assert chosen[k] in candidates
        assert score(chosen[k]) == pytest.approx(max(values), abs=1e-12)
        assert chosen[k] == candidates[np.flatnonzero(np.isclose(values, max(values)))].max()


def test_classification_input_errors():
    with pytest.raises(InputError, match="shape mismatch"):
        per_class_auroc(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(InputError, match="binary labels"):
        accuracy([0, 2], [0.1, 0.2])


# --- segmentation -----------------------------------------------------------------------------------------


def test_dice_iou_of_overlapping_squares():
    a = np.zeros((20, 20), dtype=np.int64)
    b = np.zeros_like(a)
    a[2:12, 2:12] = 1  # 100 px
    b[7:17, 2:12] = 1  # 100 px, overlap 5 x 10 = 50 px
    # Background: |A0| = |B0| = 300, overlap 400 - 150 = 250.
    np.testing.assert_allclose(dice(a, b, num_classes=2), [500 / 600, 100 / 200])
    np.testing.assert_allclose(iou(a, b, num_classes=2), [250 / 350, 50 / 150])
    one_hot = lambda m: np.stack([m == 0, m == 1])  # noqa: E731
    np.testing.assert_allclose(dice(one_hot(a), one_hot(b)), dice(a, b, num_classes=2))
    np.testing.assert_allclose(iou(torch.tensor(one_hot(a)), torch.tensor(one_hot(b))), iou(a, b, num_classes=2))


def test_dice_empty_empty_convention():
    a = np.zeros((4, 4), dtype=np.int64)
    assert dice(a, a, num_classes=3).tolist() == [1.0, 1.0, 1.0]
    assert np.isnan(iou(a, a, num_classes=3, empty_score=np.nan)[1:]).all()


def test_dice_input_errors():
    with pytest.raises(InputError, match="shape mismatch between prediction"):
        dice(np.zeros((3, 4), int), np.zeros((4, 3), int), num_classes=2)
    with pytest.raises(InputError, match=r"labels must lie in \[0, 2\)"):
        dice(np.full((2, 2), 2), np.zeros((2, 2), int), num_classes=2)


def _surface_ref(m):
    return m & ~ndimage.binary_erosion(m, ndimage.generate_binary_structure(m.ndim, 1))


def test_hd95_of_shifted_thin_box_is_shift_times_spacing():
    a = np.zeros((12, 10, 10), bool)
    b = np.zeros_like(a)
    a[3, 2:8, 2:8] = True
    b[6, 2:8, 2:8] = True  # shifted by 3 voxels along an axis of 2.5 mm voxels
    assert hausdorff_distance_95(a, b, spacing=(2.5, 1.0, 0.8)) == pytest.approx(7.5)


def test_hausdorff_of_shifted_solid_boxes_2d():
    a = np.zeros((30, 30), bool)
    b = np.zeros_like(a)
    a[5:15, 5:15] = True
    b[9:19, 5:15] = True
    assert hausdorff_distance(a, b, spacing=(0.5, 2.0), percentile=100) == pytest.approx(4 * 0.5)


def test_hd95_matches_brute_force_surface_distances():
    rng = np.random.default_rng(1)
    a = ndimage.binary_dilation(rng.random((16, 18, 14)) > 0.97, iterations=2)
    b = ndimage.binary_dilation(rng.random((16, 18, 14)) > 0.97, iterations=2)
    spacing = np.array([1.5, 0.7, 1.0])
    pa, pb = np.argwhere(_surface_ref(a)) * spacing, np.argwhere(_surface_ref(b)) * spacing
    d = cdist(pa, pb)
    expected = max(np.percentile(d.min(1), 95), np.percentile(d.min(0), 95))
    assert hausdorff_distance_95(a, b, spacing=spacing) == pytest.approx(expected, abs=1e-9)


def test_hausdorff_empty_conventions():
    z = np.zeros((5, 5), bool)
    m = z.copy()
    m[2, 2] = True
    assert hausdorff_distance_95(z, z) == 0.0
    with pytest.warns(UndefinedMetricWarning):
        assert hausdorff_distance_95(m, z) == np.inf


# --- ISBI 2012 --------------------------------------------------------------------------------------------


def test_pixel_error():
    gt = np.array([[255, 255, 0], [0, 255, 255]])
    pred = np.array([[0.9, 0.2, 0.1], [0.4, 0.6, 0.7]])  # one wrong pixel of six
    assert pixel_error(pred, gt) == pytest.approx(1 / 6)


def test_rand_error_hand_computed_split():
    gt = np.zeros((3, 7))
    gt[1, 1:6] = 255  # one cell of 5 px
    pred = np.zeros((3, 7))
    pred[1, [1, 2, 4, 5]] = 1.0  # split in two by a predicted membrane pixel
    # p = 2/5, 2/5 and the background pixel as singleton 1/5: sum p^2 = 9/25 = sum s^2, sum t^2 = 1.
    scores = foreground_restricted_rand_scores(pred, gt)
    assert scores.v_split == pytest.approx(9 / 25)
    assert scores.v_merge == pytest.approx(1.0)
    assert foreground_restricted_rand_error(pred, gt) == pytest.approx(1 - (9 / 25) / (0.5 * 9 / 25 + 0.5))


def test_rand_error_matches_contingency_matrix_reference():
    rng = np.random.default_rng(2)
    gt = np.where(ndimage.binary_opening(rng.random((40, 40)) > 0.3), 255, 0)
    prob = np.clip(gt / 255 + rng.normal(0, 0.35, gt.shape), 0, 1)
    four = ndimage.generate_binary_structure(2, 1)
    gt_lab, _ = ndimage.label(gt > 0.5, four)
    pred_lab, n_pred = ndimage.label(prob > 0.5, four)
    fg = gt_lab > 0
    # Background pixels of the prediction become singleton segments (the Fiji script's convention).
    pred_fg = pred_lab[fg].copy()
    bg = pred_fg == 0
    pred_fg[bg] = n_pred + 1 + np.arange(bg.sum())
    c = contingency_matrix(gt_lab[fg], pred_fg).astype(float) / fg.sum()
    v = (c**2).sum() / (0.5 * (c.sum(0) ** 2).sum() + 0.5 * (c.sum(1) ** 2).sum())
    assert foreground_restricted_rand_error(prob, gt) == pytest.approx(1 - v, abs=1e-12)
    assert foreground_restricted_rand_error(gt / 255, gt) == pytest.approx(0.0, abs=1e-12)


def test_isbi_expects_2d():
    with pytest.raises(InputError, match="2D"):
        pixel_error(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)))
