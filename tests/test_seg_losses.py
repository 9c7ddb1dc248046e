"""Segmentation losses on fixed inputs with values worked out by hand: the U-Net weight map, Dice, Dice+CE."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medhub.errors import InputError
from medhub.losses import (
    DiceCELoss,
    DiceLoss,
    border_distances,
    class_balance_weights,
    crop_to_output,
    instances_from_mask,
    segmentation_loss,
    soft_dice_loss,
    unet_weight_map,
    weighted_cross_entropy,
)


def shared_data_dir() -> Path | None:
    root = Path(os.environ.get("MEDHUB_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    return root if root.is_dir() else None


# -- the U-Net weight map ---------------------------------------------------------------------------

def test_weight_map_on_a_row_of_three_cells():
    # one row, cells (arbitrary ids) at columns 0, 3 and 9; background elsewhere
    instances = np.zeros((1, 10), dtype=np.int32)
    instances[0, 0], instances[0, 3], instances[0, 9] = 5, 2, 7
    # d1 + d2 at background columns 1, 2, 4, 5, 6, 7, 8, from the distances to columns 0, 3, 9
    d_sum = {1: 1 + 2, 2: 1 + 2, 4: 1 + 4, 5: 2 + 4, 6: 3 + 3, 7: 2 + 4, 8: 1 + 5}
    w_fg, w_bg = 10 / (2 * 3), 10 / (2 * 7)  # N / (K n_k): 3 cell pixels, 7 background pixels
    expected = np.full(10, w_fg)
    for col, s in d_sum.items():
        expected[col] = w_bg + 10 * math.exp(-(s**2) / (2 * 5**2))
    weights = unet_weight_map(instances, w0=10, sigma=5)
    assert weights.dtype == np.float32 and weights.shape == (1, 10)
    np.testing.assert_allclose(weights[0], expected, rtol=1e-6)


def test_border_distances_are_euclidean_to_nearest_and_second_nearest_cell():
    instances = np.zeros((5, 5), dtype=np.int64)
    instances[0, 0], instances[3, 4] = 1, 2
    d1, d2 = border_distances(instances)
    assert (d1[1, 2], d2[1, 2]) == pytest.approx((math.sqrt(5), math.sqrt(8)))
    assert (d1[3, 0], d2[3, 0]) == pytest.approx((3.0, 4.0))
    assert d1[0, 0] == 0 and d2[0, 0] == pytest.approx(5.0)


def test_weight_map_with_one_cell_is_class_balance_only():
    instances = np.zeros((4, 4), dtype=np.int32)
    instances[1:3, 1:3] = 1
    weights = unet_weight_map(instances)
    np.testing.assert_allclose(weights, np.where(instances > 0, 16 / 8, 16 / 24), rtol=1e-6)
    assert weights.mean() == pytest.approx(1.0)  # w_c averages to 1


def test_class_balance_weights_average_to_one():
    classes = np.array([[0, 0, 0, 1], [0, 2, 2, 0]])
    weights = class_balance_weights(classes)
    assert weights[0, 0] == pytest.approx(8 / (3 * 5)) and weights[0, 3] == pytest.approx(8 / 3)
    assert weights.mean() == pytest.approx(1.0)


def test_instances_from_mask_connectivity():
    mask = np.array([[1, 1, 0, 0],
                     [0, 0, 1, 0],
                     [0, 0, 0, 0],
                     [1, 0, 0, 1]])
    four = instances_from_mask(mask, connectivity=1)
    eight = instances_from_mask(mask, connectivity=2)
    assert four.max() == 4 and eight.max() == 3  # the diagonal touch joins two blobs with 8-connectivity
    assert four[0, 0] == four[0, 1] and four[0, 1] != four[1, 2] and eight[0, 1] == eight[1, 2]


def test_weight_map_rejects_float_labels():
    with pytest.raises(InputError, match="integer label image"):
        unet_weight_map(np.zeros((4, 4), dtype=np.float32))


@pytest.mark.shared_data
def test_weight_map_on_isbi2012_label():
    data = shared_data_dir()
    if data is None or not (data / "isbi2012-em" / "train" / "label" / "0.png").is_file():
        pytest.skip("needs ../shared/data/isbi2012-em (set MEDHUB_DATA_DIR)")
    from PIL import Image

    label = np.asarray(Image.open(data / "isbi2012-em" / "train" / "label" / "0.png"))[:128, :128]
    instances = instances_from_mask(label == 255)
    weights = unet_weight_map(instances)
    w_c = class_balance_weights((instances > 0).astype(int))
    assert instances.max() > 5  # a crop of EM has many cells
    assert np.all(weights >= w_c - 1e-6) and weights.max() <= w_c.max() + 10 + 1e-5
    # cell interiors keep w_c; the thin membranes between touching cells get most of the extra weight
    np.testing.assert_allclose(weights[instances > 0], w_c[instances > 0], rtol=1e-6)
    assert (weights - w_c)[instances == 0].max() > 5


# -- weighted cross-entropy -------------------------------------------------------------------------

def test_weighted_cross_entropy_values():
    logits = torch.zeros(1, 2, 2, 2)  # p = 0.5 everywhere: CE = ln 2 per pixel
    labels = torch.tensor([[[0, 1], [1, 0]]])
    weight_map = torch.tensor([[[1.0, 2.0], [3.0, 6.0]]])
    assert weighted_cross_entropy(logits, labels, weight_map).item() == pytest.approx(3.0 * math.log(2))
    assert weighted_cross_entropy(logits, labels).item() == pytest.approx(math.log(2))
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(weighted_cross_entropy(logits, labels, torch.ones(2, 4, 4)),
                               F.cross_entropy(logits, labels))
    with pytest.raises(InputError, match="weight_map"):
        weighted_cross_entropy(logits, labels, torch.ones(2, 4, 5))


# -- Dice -------------------------------------------------------------------------------------------

def test_dice_of_identical_one_hot_is_zero():
    labels = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    probabilities = F.one_hot(labels, 3).movedim(-1, 1).float()
    assert soft_dice_loss(probabilities, labels).item() == 0.0
    assert soft_dice_loss(probabilities, labels, smooth=0.0, include_background=False).item() == 0.0
    assert DiceLoss()(probabilities * 100.0, labels).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_value_by_hand():
    labels = torch.tensor([[[1, 1], [0, 0]]])
    p1 = torch.tensor([[0.8, 0.6], [0.2, 0.0]])
    probabilities = torch.stack([1 - p1, p1]).unsqueeze(0)
    # class 1: 2 * 1.4 / (1.6 + 2) = 7/9; class 0: 2 * 1.8 / (2.4 + 2) = 9/11
    assert soft_dice_loss(probabilities, labels, smooth=0.0).item() == pytest.approx(1 - (7 / 9 + 9 / 11) / 2)
    assert soft_dice_loss(probabilities, labels, smooth=0.0, include_background=False).item() == pytest.approx(2 / 9)


def test_dice_ce_value_by_hand():
    logits = torch.zeros(1, 2, 2, 2)  # p = 0.5 everywhere
    labels = torch.zeros(1, 2, 2, dtype=torch.long)
    # smooth 1: class 0 (2*2 + 1) / (2 + 4 + 1) = 5/7, class 1 (0 + 1) / (2 + 0 + 1) = 1/3; CE = ln 2
    dice = 1 - (5 / 7 + 1 / 3) / 2
    assert DiceLoss()(logits, labels).item() == pytest.approx(dice)
    assert DiceCELoss()(logits, labels).item() == pytest.approx(dice + math.log(2))
    assert segmentation_loss("dice_ce", logits, labels).item() == pytest.approx(dice + math.log(2))


def test_dice_rejects_bad_labels():
    with pytest.raises(InputError, match=r"values must be in \[0, 1\]"):
        soft_dice_loss(torch.full((1, 2, 2, 2), 0.5), torch.full((1, 2, 2), 2))
    with pytest.raises(InputError, match="expected shape"):
        soft_dice_loss(torch.full((1, 2, 2, 2), 0.5), torch.zeros(1, 3, 2, dtype=torch.long))


# -- the task models' loss entry point --------------------------------------------------------------

def test_segmentation_loss_crops_input_size_labels_to_the_output():
    logits = torch.randn(1, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 3, (1, 6, 6), generator=torch.Generator().manual_seed(1))
    weight_map = torch.rand(1, 6, 6, generator=torch.Generator().manual_seed(2))
    centre = (slice(None), slice(2, 4), slice(2, 4))
    expected = (weight_map[centre] * F.cross_entropy(logits, labels[centre], reduction="none")).mean()
    torch.testing.assert_close(segmentation_loss("weighted_ce", logits, labels, weight_map), expected)
    torch.testing.assert_close(segmentation_loss("ce", logits, labels), F.cross_entropy(logits, labels[centre]))
    assert crop_to_output(labels, (6, 6)) is labels


def test_segmentation_loss_errors():
    logits = torch.zeros(1, 2, 4, 4)
    with pytest.raises(InputError, match="smaller than the model output"):
        segmentation_loss("ce", logits, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(InputError, match="no channel dim"):
        segmentation_loss("ce", logits, torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(InputError, match="integer class indices"):
        segmentation_loss("ce", logits, torch.zeros(1, 4, 4))
    with pytest.raises(InputError, match="only used with loss='weighted_ce'"):
        segmentation_loss("dice_ce", logits, torch.zeros(1, 4, 4, dtype=torch.long), torch.ones(1, 4, 4))
