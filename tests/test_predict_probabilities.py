"""`medhub predict --save-probabilities [--tta]`: the probability and uncertainty maps written for segmenters (real
images and volumes, tiny random models), and the Dice of the most uncertain pixels vs the rest."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import medhub
from medhub.commands.predict import main as predict_main
from medhub.evaluation.uncertainty import split_dice
from medhub.models.attention_unet import AttentionUNetConfig
from medhub.models.unet import UNetConfig

SUBJECT = "brats2015-examples/brats_2013_pat0003_1"
CROP = (slice(100, 124), slice(100, 124), slice(60, 76))  # 24 x 24 x 16 voxels around the tumour


def _saved(config, folder) -> str:
    torch.manual_seed(0)
    medhub.MedModel.from_config(config).save_pretrained(folder)
    return str(folder)


def _predict(*argv) -> int:
    return predict_main([*map(str, argv), "--no-progress"])


def test_2d_probabilities_and_entropy(shared_data, tmp_path):
    model = _saved(UNetConfig(base_width=4, depth=2, padding="same", num_labels=3), tmp_path / "unet")
    image = shared_data / "isbi2012-em/train/image/0.png"
    assert _predict(model, image, "--out", tmp_path / "plain", "--save-probabilities") == 0
    assert (tmp_path / "plain/0_probabilities.npz").is_file() and not (tmp_path / "plain/0_uncertainty.npz").exists()

    assert _predict(model, image, "--out", tmp_path / "out", "--save-probabilities", "--tta") == 0
    with np.load(tmp_path / "out/0_probabilities.npz") as saved:
        probs, names = saved["probabilities"], list(saved["labels"])
    with np.load(tmp_path / "out/0_uncertainty.npz") as saved:
        entropy = saved["entropy"]
    mask = np.array(Image.open(tmp_path / "out/0_mask.png"))
    assert probs.shape == (3, 512, 512) and probs.dtype == np.float32 and names == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert np.allclose(probs.sum(0), 1.0, atol=1e-5) and probs.min() >= 0
    assert np.array_equal(probs.argmax(0), mask)
    assert entropy.shape == (512, 512) and entropy.min() >= 0 and entropy.max() <= np.log(3) + 1e-6
    expected = -(probs * np.log(np.clip(probs, 1e-30, 1))).sum(0)
    assert np.allclose(entropy, expected, atol=1e-5)


def test_3d_probabilities_and_entropy_in_the_input_geometry(shared_data, tmp_path):
    folder = tmp_path / "pat0003"
    folder.mkdir()
    for name in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz"):
        nib.save(nib.load(shared_data / SUBJECT / name).slicer[CROP], folder / name)
    config = AttentionUNetConfig(spatial_dims=3, base_width=2, depth=2, num_labels=3, in_channels=2,
                                 channel_names=["flair", "t1c"], deep_supervision=False)
    model = _saved(config, tmp_path / "att")
    out = tmp_path / "out"
    assert _predict(model, folder, "--out", out, "--roi-size", "16", "--save-probabilities", "--tta") == 0
    reference = nib.load(folder / "Flair_subtrMeanDivStd.nii.gz")
    probs_image = nib.load(out / "pat0003_probabilities.nii.gz")
    entropy_image = nib.load(out / "pat0003_uncertainty.nii.gz")
    probs, entropy = np.asarray(probs_image.dataobj), np.asarray(entropy_image.dataobj)
    labels = np.asarray(nib.load(out / "pat0003_seg.nii.gz").dataobj)
    assert probs.shape == (24, 24, 16, 3) and entropy.shape == (24, 24, 16)
    assert probs.dtype == entropy.dtype == np.float32
    assert np.array_equal(probs_image.affine, reference.affine) and np.array_equal(entropy_image.affine,
                                                                                    reference.affine)
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert np.array_equal(probs.argmax(-1), labels)
    assert entropy.min() >= 0 and entropy.max() <= np.log(3) + 1e-6


def test_split_dice_on_fixed_inputs():
    pred = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 1])
    target = np.array([0, 1, 1, 0, 1, 1, 0, 0, 0, 1])
    entropy = np.array([0.9, 0.1, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    result = split_dice(pred, target, entropy, fraction=0.2)  # the two most uncertain: indices 0 and 2
    assert result["dice_uncertain"] == 0.0  # one false positive, one false negative
    assert result["dice_rest"] == pytest.approx(2 * 4 / (4 + 4))
    assert result["entropy_cutoff"] == 0.8 and result["elements"] == 10


@pytest.mark.parametrize("name", ["unet-isbi2012", "attention-unet-brats"])
def test_zoo_segmenter_cards_show_that_uncertainty_is_informative(name):
    folder = Path(__file__).resolve().parents[1] / "model_zoo" / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"model_zoo/{name} not present")
    uncertainty = json.loads((folder / "config.json").read_text())["weights_info"].get("uncertainty")
    if uncertainty is None:
        pytest.skip(f"{name}: no uncertainty measurement recorded (medhub zoo build {name} --evaluate-only)")
    assert uncertainty["fraction"] == 0.1 and uncertainty["tta"] and uncertainty["items"]
    assert uncertainty["dice_uncertain"] < uncertainty["dice_rest"]
    assert f"{uncertainty['dice_uncertain']:.4f}" in (folder / "README.md").read_text()
