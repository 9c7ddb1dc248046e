"""Cell instances from membrane probability maps (`medhub.inference.membrane_watershed`), the Rand scores of a
label map (`medhub.metrics.segmentation_rand_scores`), and both in `medhub evaluate` / `medhub predict`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

import medhub
from medhub.errors import ConfigError, InputError
from medhub.inference import membrane_watershed
from medhub.metrics import foreground_restricted_rand_scores, segmentation_rand_scores
from medhub.models.unet import UNetConfig
from medhub.predict import predict_paths
from medhub.processing import GreyscaleImageProcessor


def two_cells_with_a_faint_gap() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth (0 membrane / 255 cell) of two 20x20 cells split by a 2-px membrane, and a probability map
    that sees the membrane everywhere but in a 4-px stretch where it is faint (0.6: above the 0.5 argmax)."""
    truth = np.zeros((24, 46))
    truth[2:22, 2:22] = truth[2:22, 24:44] = 255
    prob = np.where(truth > 0, 0.95, 0.05)
    prob[10:14, 22:24] = 0.6
    return truth, prob


def test_a_faint_gap_merges_the_argmax_but_not_the_watershed():
    truth, prob = two_cells_with_a_faint_gap()
    merged = foreground_restricted_rand_scores(prob, truth)
    # argmax: one segment holds both cells (400 px each of n = 800): sum p^2 = 2 (1/2)^2, sum s^2 = 1.
    assert merged.v_merge == pytest.approx(0.5) and merged.v_split == pytest.approx(1.0)
    labels = membrane_watershed(prob, seed_threshold=0.7, min_seed_size=10, smoothing=0.0)
    assert labels.dtype == np.int32 and labels.max() == 2
    assert len(np.unique(labels[truth > 0])) == 2  # every cell pixel in one of the two cells
    assert labels[5, 5] != labels[5, 30]
    scores = segmentation_rand_scores(labels, truth)
    assert scores.v_rand == pytest.approx(1.0)  # the watershed line lies on the true membrane


def test_every_pixel_joins_a_cell_except_one_pixel_lines():
    truth, prob = two_cells_with_a_faint_gap()
    labels = membrane_watershed(prob, seed_threshold=0.7, min_seed_size=10, smoothing=0.0)
    lines = labels == 0
    assert 0 < lines.sum() <= truth.shape[0] + 2  # one line, about one pixel wide, between the two cells
    # 4-connected components of the label-free map are exactly the labels: lines separate the cells
    components, n = ndimage.label(~lines, ndimage.generate_binary_structure(2, 1))
    assert n == 2


def test_small_seeds_and_no_cells():
    truth, prob = two_cells_with_a_faint_gap()
    prob[5, 5:8] = 0.99  # irrelevant: inside a cell already
    assert membrane_watershed(prob, min_seed_size=401, smoothing=0.0).max() == 0  # both cells too small to seed
    assert membrane_watershed(np.full((8, 8), 0.1)).tolist() == np.zeros((8, 8), np.int32).tolist()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 4, 4)), "2D"),
    (np.zeros((4, 4), np.uint8), "floats"),
    (np.full((4, 4), 3.0), "logits"),
    (np.array([[0.5, np.nan], [0.1, 0.2]]), "NaN"),
])
def test_bad_probability_maps_are_refused(bad, message):
    with pytest.raises(InputError, match=message):
        membrane_watershed(bad)


def test_segmentation_rand_scores_take_labels_as_given():
    truth, _ = two_cells_with_a_faint_gap()
    gt_segments, _ = ndimage.label(truth > 0, ndimage.generate_binary_structure(2, 1))
    assert segmentation_rand_scores(gt_segments, truth).v_rand == pytest.approx(1.0)
    sparse = np.where(gt_segments == 1, 7, np.where(gt_segments == 2, 900, 0))
    assert segmentation_rand_scores(sparse, truth) == segmentation_rand_scores(gt_segments, truth)
    one_label = (truth > 0).astype(np.int64)  # both cells under one label although not connected: a merge
    assert segmentation_rand_scores(one_label, truth).v_merge == pytest.approx(0.5)
    everything = np.full(truth.shape, 3)  # no label 0 at all: label 3 is a segment, not the background
    assert segmentation_rand_scores(everything, truth).v_merge == pytest.approx(0.5)
    with pytest.raises(InputError, match="integer"):
        segmentation_rand_scores(truth / 255.0, truth)


def test_predict_writes_instances_for_weights_that_name_them(shared_data, tmp_path):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2))
    model.config.weights_info = {"instances": {"method": "membrane_watershed", "seed_threshold": 0.5,
                                               "min_seed_size": 5, "smoothing": 1.0}}
    model.save_pretrained(tmp_path / "unet")
    report = predict_paths(str(tmp_path / "unet"), [shared_data / "isbi2012-em/train/image/0.png"], tmp_path / "out",
                           progress=False)
    assert report.ok
    instances = np.array(Image.open(tmp_path / "out/0_instances.png"))
    overlay = np.array(Image.open(tmp_path / "out/0_instances_overlay.png"))
    assert instances.shape == (512, 512) and instances.dtype == np.uint16 and overlay.shape == (512, 512, 3)
    probability = np.array(Image.open(tmp_path / "out/0_mask.png"))  # argmax map, for the count check only
    assert instances.max() >= 1 and (instances > 0).mean() > (probability > 0).mean() - 1e-9
    # the same call on a model without `instances` writes mask and overlay only
    plain = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2))
    plain.save_pretrained(tmp_path / "plain")
    predict_paths(str(tmp_path / "plain"), [shared_data / "isbi2012-em/train/image/0.png"], tmp_path / "out2",
                  progress=False)
    assert sorted(p.name for p in (tmp_path / "out2").glob("*.png")) == ["0_mask.png", "0_overlay.png"]


def test_evaluate_scores_the_instances_the_weights_name(shared_data, tmp_path):
    """`medhub evaluate` adds rand_error_watershed = the Rand error of membrane_watershed of the same
    sliding-window probabilities whose argmax gives pixel_error / rand_error."""
    from medhub.commands.evaluate import evaluate_command
    from medhub.data.loaders import load
    from medhub.inference import sliding_window_inference

    torch.manual_seed(0)
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2,
                                                   norm="batch", id2label={0: "membrane", 1: "cell"}))
    options = {"seed_threshold": 0.55, "min_seed_size": 20, "smoothing": 1.0}
    model.config.weights_info = {
        "data_options": {"val_slices": 4}, "inference": {"roi_size": [256, 256], "overlap": 0.5, "batch_size": 4},
        "label_values": {"255": 1}, "instances": {"method": "membrane_watershed", **options}}
    model.image_processor = GreyscaleImageProcessor(do_normalize=True, image_mean=[0.5], image_std=[0.2])
    model.save_pretrained(tmp_path / "unet")
    result = evaluate_command(str(tmp_path / "unet"), "isbi2012", split="validation", limit=1, batch_size=1)
    metrics = result.metrics

    row = load("isbi2012", "validation", val_slices=4)[0]
    image = np.asarray(row["image"], dtype=np.float32)
    truth = (np.asarray(row["mask"]) == 255).astype(np.float32)
    model = medhub.MedModel.from_pretrained(str(tmp_path / "unet")).eval()
    with torch.inference_mode():
        logits = sliding_window_inference(lambda x: model(pixel_values=x).logits.float(),
                                          torch.from_numpy((image / 255 - 0.5) / 0.2)[None, None], [256, 256])
    prob = torch.softmax(logits, 1)[0].numpy()
    expected = 1 - segmentation_rand_scores(membrane_watershed(prob[1], **options), truth).v_rand
    assert metrics["rand_error_watershed"] == pytest.approx(expected, abs=1e-9)
    assert metrics["rand_error"] == pytest.approx(1 - foreground_restricted_rand_scores(
        prob.argmax(0).astype(np.float32), truth).v_rand, abs=1e-9)
    assert {r["name"]: r["type"] for r in result.card_metrics()}["rand_error_watershed"] == "rand_error"


def test_instances_entries_are_checked():
    from medhub.inference import watershed_options

    assert watershed_options({"method": "membrane_watershed", "seed_threshold": 0.9}) == {"seed_threshold": 0.9}
    with pytest.raises(ConfigError, match="expected 'membrane_watershed'"):
        watershed_options({"method": "connected_components"})
    with pytest.raises(ConfigError, match="seed_treshold"):
        watershed_options({"seed_treshold": 0.9})
