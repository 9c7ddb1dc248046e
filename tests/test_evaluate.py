"""Classification recipe on real PneumoniaMNIST and `medhub evaluate`: metrics checked against sklearn on
probabilities computed by hand (the saved processor, a plain forward pass, softmax)."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score

from medhub import MedModel
from medhub.commands import add_evaluate_parser, add_train_parser
from medhub.data.recipe_data import load_rows
from medhub.training import Recipe, card_metrics, task_metrics, train


def pneumonia_recipe() -> Recipe:
    return Recipe.from_dict({
        "name": "resnet18-pneumoniamnist-tiny",
        "seed": 0,
        "model": {"type": "resnet", "config": {"depth": 18, "in_channels": 1, "num_labels": 2,
                                               "id2label": {0: "normal", 1: "pneumonia"},
                                               "problem_type": "single_label_classification"}},
        "processor": {"do_resize": True, "size": 32, "do_normalize": True, "image_mean": [0.5], "image_std": [0.5]},
        "data": {"name": "pneumoniamnist", "limit_train": 96, "limit_eval": 80},
        "training": {"max_steps": 6, "per_device_train_batch_size": 16, "per_device_eval_batch_size": 40,
                     "learning_rate": 0.001, "save_strategy": "no", "disable_tqdm": True, "use_cpu": True},
        "evaluation": {"metric": "auroc", "threshold": "validation"},
    })


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    recipe = pneumonia_recipe()
    return recipe, train(recipe, tmp_path_factory.mktemp("pneumonia") / "model")


def sklearn_scores(model, rows):
    """(labels, p(pneumonia)) by hand: the saved processor on the raw images, one forward pass, softmax."""
    pixel_values = model.image_processor(list(rows["image"]), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = model.eval()(pixel_values=pixel_values).logits
    return np.asarray(rows["label"]), torch.softmax(logits, 1)[:, 1].numpy()


def test_training_metrics_match_sklearn(trained):
    recipe, result = trained
    validation = load_rows(recipe.data, "validation", seed=recipe.seed)
    assert len(validation) == 80
    y, score = sklearn_scores(result.model, validation)
    assert 0 < y.sum() < len(y)  # both classes present in the subset
    assert result.metrics["auroc"] == pytest.approx(roc_auc_score(y, score), abs=1e-6)
    threshold = result.threshold  # chosen on the validation split (max F1), applied there
    assert result.metrics["threshold"] == threshold
    assert result.metrics["f1"] == pytest.approx(f1_score(y, score >= threshold), abs=1e-6)
    assert result.metrics["accuracy"] == pytest.approx(np.mean((score >= threshold) == y), abs=1e-6)
    info = json.loads((result.output_dir / "config.json").read_text())["weights_info"]
    assert info["threshold"] == pytest.approx(threshold)
    assert {m["name"] for m in info["metrics"]} == {"auroc", "accuracy", "f1", "threshold"}
    assert all(m["split"] == "validation" and m["dataset"] == "pneumoniamnist" for m in info["metrics"])
    assert "| auroc |" in (result.output_dir / "README.md").read_text()


def test_evaluate_cli_prints_table_and_writes_card_json(trained, tmp_path, capsys):
    recipe, result = trained
    parser = argparse.ArgumentParser(prog="medhub")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    out = tmp_path / "metrics.json"
    args = parser.parse_args(["evaluate", str(result.output_dir), "pneumoniamnist", "--split", "validation",
                              "--limit", "60", "--threshold", "0.5", "--out", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["split"] == "validation" and report["num_examples"] == 60
    rows = {m["name"]: m for m in report["metrics"]}
    assert set(rows["auroc"]) == {"name", "type", "value", "split", "dataset"} and rows["auroc"]["type"] == "roc_auc"
    # Same predictions through sklearn: the first 60 validation images, the saved preprocessing.
    model = MedModel.from_pretrained(result.output_dir)
    data = load_rows({"name": "pneumoniamnist", "limit_eval": 60, "shuffle_before_limit": False}, "validation")
    y, score = sklearn_scores(model, data)
    assert rows["auroc"]["value"] == pytest.approx(roc_auc_score(y, score), abs=1e-6)
    assert rows["f1"]["value"] == pytest.approx(f1_score(y, score >= 0.5), abs=1e-6)
    assert re.search(rf"^auroc +{rows['auroc']['value']:.4f}$", printed, re.M)


def test_segmentation_metrics_and_card_rows():
    class Config:
        num_labels, id2label = 3, {0: "background", 1: "oedema", 2: "tumour"}

    pred = np.array([[[0, 1, 1, 2]]])
    labels = np.array([[[0, 1, 2, 2]]])
    metrics = task_metrics("image-segmentation", Config, pred, labels)
    assert metrics == {"dice_background": 1.0, "dice_oedema": pytest.approx(2 / 3), "dice_tumour": pytest.approx(2 / 3),
                       "mean_dice": pytest.approx(2 / 3)}
    rows = card_metrics({"eval_mean_dice": 0.5, "eval_loss": 0.1, "eval_runtime": 3.0}, "validation", "brats")
    assert rows == [{"name": "mean_dice", "type": "dice", "value": 0.5, "split": "validation", "dataset": "brats"}]
