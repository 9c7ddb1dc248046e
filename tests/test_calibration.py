"""Calibration: ECE / Brier / entropy on fixed inputs, temperature fitting, the temperature saved with the weights
and applied by the inferer, and `calibrate_classifier` on real PneumoniaMNIST validation images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import medhub
from medhub.cli import main as cli_main
from medhub.errors import ConfigError, InputError
from medhub.evaluation.calibration import calibrate_classifier, fit_temperature
from medhub.metrics import brier_score, expected_calibration_error, predictive_entropy
from medhub.models.chexnet import CheXNetConfig
from medhub.processing import RadiographImageProcessor
from medhub.zoo.build import store

# Confidences 0.75, 0.95, 0.55, 0.65 fall in four different of the 15 bins; the last prediction is wrong.
LABELS = np.array([0, 1, 1, 0])
P_POSITIVE = np.array([0.25, 0.95, 0.55, 0.65])


def test_ece_on_fixed_inputs():
    # (|1 - 0.75| + |1 - 0.95| + |1 - 0.55| + |0 - 0.65|) / 4
    assert expected_calibration_error(LABELS, P_POSITIVE) == pytest.approx(0.35, abs=1e-12)
    two_columns = np.stack([1 - P_POSITIVE, P_POSITIVE], axis=1)
    assert expected_calibration_error(LABELS, two_columns) == pytest.approx(0.35, abs=1e-12)
    # One bin (0.6667, 0.7333]: accuracy 0.5, mean confidence 0.71.
    assert expected_calibration_error([1, 0], [0.7, 0.72]) == pytest.approx(0.21, abs=1e-12)
    # One bin for everything: |accuracy 0.75 - mean confidence 0.725|.
    assert expected_calibration_error(LABELS, P_POSITIVE, n_bins=1) == pytest.approx(0.025, abs=1e-12)
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_brier_score_on_fixed_inputs():
    # (0.25^2 + 0.05^2 + 0.45^2 + 0.65^2) / 4
    assert brier_score(LABELS, P_POSITIVE) == pytest.approx(0.1725, abs=1e-12)
    two_columns = np.stack([1 - P_POSITIVE, P_POSITIVE], axis=1)
    assert brier_score(LABELS, two_columns) == pytest.approx(0.345, abs=1e-12)  # Brier's sum over classes
    assert brier_score([2, 0], [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]) == pytest.approx((0.04 + 0.09 + 0.25) / 2)


def test_bad_calibration_inputs_are_refused():
    with pytest.raises(InputError, match="probabilities in \\[0, 1\\]"):
        brier_score([0, 1], [-0.5, 2.0])
    with pytest.raises(InputError, match="sum to 1"):
        expected_calibration_error([0, 1], [[0.5, 0.4], [0.2, 0.8]])
    with pytest.raises(InputError, match="class indices"):
        brier_score([0, 3], [0.1, 0.9])


def test_predictive_entropy():
    probs = np.array([[0.25, 1.0], [0.25, 0.0], [0.25, 0.0], [0.25, 0.0]])  # (K=4, 2 pixels)
    assert predictive_entropy(probs, axis=0) == pytest.approx([np.log(4), 0.0], abs=1e-12)


def test_fit_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(20000, 3)) * 2.0
    p = torch.softmax(torch.as_tensor(true_logits), dim=1).numpy()
    labels = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(true_logits * 3.0, labels) == pytest.approx(3.0, rel=0.05)
    assert fit_temperature(true_logits / 2.0, labels) == pytest.approx(0.5, rel=0.05)
    binary = true_logits[:, :1]
    targets = (rng.random(binary.shape) < 1 / (1 + np.exp(-binary))).astype(int)
    assert fit_temperature(binary * 2.0, targets, "sigmoid") == pytest.approx(2.0, rel=0.05)


def _tiny_chexnet(size: int = 28):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(CheXNetConfig.pneumonia(growth_rate=4, block_config=[1, 2],
                                                                num_init_features=8, bn_size=2))
    model.image_processor = RadiographImageProcessor(num_channels=1, size=size, image_mean=[0.5], image_std=[0.25])
    return model.eval()


def test_temperature_round_trip_and_inferer(tmp_path):
    model = _tiny_chexnet()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    assert torch.allclose(model.infer(x), torch.softmax(logits, 1), atol=1e-6)
    model.config.weights_info = {"calibration": {"temperature": 2.5}, "threshold": 0.4}
    model.save_pretrained(tmp_path / "m")
    loaded = medhub.MedModel.from_pretrained(str(tmp_path / "m")).eval()
    assert loaded.config.weights_info["calibration"]["temperature"] == 2.5
    calibrated = loaded.infer(x)
    assert torch.allclose(calibrated, torch.softmax(logits / 2.5, 1), atol=1e-6)
    # T > 1 pulls every probability towards 1/2; TTA averages calibrated members.
    assert ((calibrated - 0.5).abs() <= (torch.softmax(logits, 1) - 0.5).abs() + 1e-7).all()
    flipped = torch.softmax(loaded(pixel_values=x.flip(-1)).logits.detach() / 2.5, 1)
    assert torch.allclose(loaded.infer(x, tta=True), (calibrated + flipped) / 2, atol=1e-6)
    # The CAM's same-forward path (predict's heatmaps) gives exactly the inferer's calibrated probabilities.
    same_forward, maps = loaded.inferer().probabilities_with_features(loaded, x)
    assert torch.equal(same_forward, calibrated) and maps.shape[:2] == (3, loaded.classifier.in_features)
    # medhub.pipeline("image-classification") scores the same calibrated probabilities.
    image = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    scores = {r["label"]: r["score"] for r in medhub.pipeline("image-classification", loaded)(image)}
    expected = loaded.infer(loaded.image_processor(image, return_tensors="pt")["pixel_values"])[0]
    assert scores["pneumonia"] == pytest.approx(float(expected[1]), abs=1e-5)
    loaded.config.weights_info = {"calibration": {"temperature": -1}}
    with pytest.raises(ConfigError, match="temperature"):
        loaded.infer(x)


def test_calibrate_classifier_on_pneumoniamnist_validation(shared_data):
    model = _tiny_chexnet()
    with torch.no_grad():  # an overconfident model: logits scaled up 20x
        model.classifier.weight.mul_(20.0)
        model.classifier.bias.mul_(20.0)
    data = {"name": "pneumoniamnist", "limit_eval": 120, "shuffle_before_limit": False}
    entry = calibrate_classifier(model, data, batch_size=60, criterion="youden")
    info = model.config.weights_info
    assert info["calibration"] is entry and info["threshold"] == entry["after"]["threshold"]
    assert entry["num_examples"] == 120 and entry["temperature"] > 1.0
    before, after = entry["before"], entry["after"]
    assert after["auroc"] == pytest.approx(before["auroc"], abs=1e-3)  # the ranking is kept
    assert after["brier"] < before["brier"] and after["ece"] <= before["ece"]
    assert 0.0 <= after["threshold"] <= 1.0


ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
CLASSIFIERS = ("chexnet-pneumonia", "resnet18-pneumonia", "vgg16-pneumonia")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_zoo_classifiers_carry_their_calibration(name):
    folder = ZOO / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"model_zoo/{name} not present")
    info = json.loads((folder / "config.json").read_text())["weights_info"]
    calibration = info["calibration"]
    assert 0.2 < calibration["temperature"] < 5 and calibration["split"] == "validation"
    assert info["threshold"] == calibration["after"]["threshold"]
    for when in ("before", "after"):
        assert set(calibration[when]) == {"auroc", "accuracy", "ece", "brier", "threshold"}
    card = (folder / "README.md").read_text()
    assert "**Calibration**" in card and f"T = {calibration['temperature']:.4f}" in card


def test_zoo_build_evaluate_only_calibrates_the_stored_weights(shared_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDHUB_DATA_DIR", str(shared_data))
    monkeypatch.chdir(tmp_path)  # the build's scratch folder is ./out/zoo/<id>
    model = _tiny_chexnet()
    model.config.weights_info = {"trained": True, "threshold": 0.5, "training_procedure": "Decision threshold "
                                 "0.5000 chosen on validation (youden). Weights stored in float16."}
    folder = tmp_path / "tiny-chexnet"
    store(model, folder)
    recipe = {"name": "tiny-chexnet", "seed": 0,
              "model": {"type": "chexnet", "config": {"in_channels": 1, "num_labels": 2, "growth_rate": 4,
                                                      "block_config": [1, 2], "num_init_features": 8, "bn_size": 2,
                                                      "problem_type": "single_label_classification"}},
              "processor": {"do_resize": True, "size": 28, "do_normalize": True, "image_mean": [0.5],
                            "image_std": [0.25]},
              "data": {"name": "pneumoniamnist", "limit_eval": 60},
              "training": {"max_steps": 1},
              "evaluation": {"metric": "auroc", "threshold": "validation", "threshold_criterion": "youden",
                             "batch_size": 60}}
    (tmp_path / "tiny-chexnet.yaml").write_text(yaml.safe_dump(recipe))
    assert cli_main(["zoo", "build", str(tmp_path / "tiny-chexnet.yaml"), "--evaluate-only", "--out", str(folder)]) == 0
    summary = json.loads(capsys.readouterr().out)
    info = json.loads((folder / "config.json").read_text())["weights_info"]
    assert summary["calibration"] == info["calibration"] and info["calibration"]["num_examples"] == 60
    assert info["threshold"] == info["calibration"]["after"]["threshold"] == summary["metrics"]["threshold"]
    assert info["calibration"]["before"]["threshold"] == 0.5
    assert f"Decision threshold {info['threshold']:.4f} chosen on validation probabilities calibrated with T = " \
        in info["training_procedure"]
    assert "**Calibration**" in (folder / "README.md").read_text()
