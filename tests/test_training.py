"""Fine-tuning through transformers.Trainer on real ISBI 2012 crops: loss, determinism, resume, the card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from PIL import Image
from safetensors.torch import load_file
from transformers import EarlyStoppingCallback, TrainerCallback

from medhub import ConfigError, InputError
from medhub.training import ClassificationCollator, Recipe, SegmentationCollator, load_recipe, train
from medhub.training.callbacks import early_stopping
from medhub.training.trainer import build_trainer, training_arguments


def tiny_unet_recipe(**training) -> Recipe:
    """A 2-level, 4-filter U-Net on 64x64 centre crops of ISBI 2012 slices (16 train, 4 validation)."""
    values = dict(max_steps=6, per_device_train_batch_size=2, learning_rate=0.01, logging_steps=1,
                  save_strategy="no", disable_tqdm=True, use_cpu=True)
    values.update(training)
    return Recipe.from_dict({
        "name": "tiny-unet-isbi",
        "seed": 3,
        "model": {"type": "unet", "config": {"in_channels": 1, "num_labels": 2, "base_width": 4, "depth": 2,
                                             "padding": "same", "norm": "batch", "dropout": 0.1, "loss": "ce",
                                             "id2label": {0: "membrane", 1: "cell"}}},
        "data": {"name": "isbi2012", "options": {"val_slices": 4}, "crop": [64, 64],
                 "label_values": {255: 1}},
        "training": values,
        "evaluation": {"metric": "mean_dice"},
    })


def state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ: {different}"


def test_tiny_unet_learns_on_isbi_and_card_records_metrics(shared_data, tmp_path):
    result = train(tiny_unet_recipe(max_steps=12), tmp_path / "run")
    losses = [log["loss"] for log in result.trainer.state.log_history if "loss" in log]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.02  # the model's own CE loss goes down
    # Final evaluation on the 4 whole validation slices, through the path `medhub predict` runs.
    assert set(result.metrics) == {"dice_membrane", "dice_cell", "mean_dice", "pixel_error", "rand_error"}
    assert result.metrics["mean_dice"] == result.metrics["dice_cell"]
    assert 0.5 < result.metrics["dice_cell"] <= 1.0
    folder = result.output_dir
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    info = json.loads((folder / "config.json").read_text())["weights_info"]
    assert info["trained"] is True and info["dataset_name"] == "isbi2012"
    rows = {m["name"]: m for m in info["metrics"]}
    assert rows["mean_dice"]["split"] == "validation"
    assert rows["mean_dice"]["value"] == pytest.approx(result.metrics["mean_dice"])
    assert info["hyperparameters"]["steps"] == 12 and info["hyperparameters"]["seed"] == 3
    assert info["label_values"] == {"255": 1}
    # the processor the training images went through is saved with the weights (the family default here: x/255)
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    assert processor["image_processor_type"] == "GreyscaleImageProcessor" and processor["do_normalize"] is False
    card = (folder / "README.md").read_text()
    assert f"| mean_dice | {result.metrics['mean_dice']:.4g} | validation | isbi2012 |" in card
    assert "randomly initialised" not in card
    assert "Training time" in card
    # The saved weights are the trained ones.
    saved = load_file(folder / "model.safetensors")
    assert torch.equal(saved["segmentation_head.weight"], result.model.state_dict()["segmentation_head.weight"])


def test_same_seed_gives_identical_weights(shared_data, tmp_path):
    first = state(train(tiny_unet_recipe(), tmp_path / "a").model)
    second = state(train(tiny_unet_recipe(), tmp_path / "b").model)
    assert_same_weights(first, second)
    other = tiny_unet_recipe()
    other.seed = 4
    third = state(train(other, tmp_path / "c").model)
    assert not torch.equal(first["segmentation_head.weight"], third["segmentation_head.weight"])


def test_resume_from_checkpoint_continues_at_the_right_step(shared_data, tmp_path):
    recipe = tiny_unet_recipe(save_strategy="steps", save_steps=3)
    full = train(recipe, tmp_path / "full")
    checkpoint = tmp_path / "full" / "checkpoint-3"
    assert (checkpoint / "model.safetensors").is_file()
    assert not list(checkpoint.glob("pytorch_model*.bin"))
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == 3
    trainer, _ = build_trainer(recipe, tmp_path / "resumed")
    steps: list[int] = []
    trainer.add_callback(type("Steps", (TrainerCallback,), {
        "on_step_end": lambda self, args, st, control, **kw: steps.append(st.global_step)})())
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert steps == [4, 5, 6]  # continued after step 3, not from 0
    assert_same_weights(state(full.model), state(trainer.model))  # same weights as the uninterrupted run


def test_recipe_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {type: unet}\ndata: {name: isbi2012}\ntraining: {learning_rat: 0.1}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*training.learning_rat"):
        load_recipe(bad)
    with pytest.raises(ConfigError, match="exactly one of `type`"):
        Recipe.from_dict({"model": {"type": "unet", "pretrained": "x"}, "data": {"name": "isbi2012"}})
    if not torch.cuda.is_available():
        recipe = tiny_unet_recipe(fp16=True)
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            training_arguments(recipe, tmp_path)
    with pytest.raises(ConfigError, match="needs training.eval_strategy"):
        early_stopping({"metric": "mean_dice", "early_stopping_patience": 2}, {}, "r.yaml")
    (callback,) = early_stopping({"metric": "mean_dice", "early_stopping_patience": 2}, {"eval_strategy": "steps"}, "r")
    assert isinstance(callback, EarlyStoppingCallback) and callback.early_stopping_patience == 2
    args = training_arguments(tiny_unet_recipe(bf16=True), tmp_path)  # bf16 is allowed on CPU and CUDA
    assert args.bf16 and args.seed == 3 and args.remove_unused_columns is False


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_recipes_are_valid(path, tmp_path):
    recipe = load_recipe(path)
    args = training_arguments(recipe, tmp_path)
    assert args.seed == recipe.seed
    assert args.metric_for_best_model == recipe.evaluation.get("metric")


def test_collators_build_model_batches():
    seg = SegmentationCollator(spatial_dims=3, in_channels=2)
    rows = [{"pixel_values": np.ones((2, 8, 8, 8), np.float32), "labels": np.full((8, 8, 8), 3)} for _ in range(2)]
    batch = seg(rows)
    assert batch["pixel_values"].shape == (2, 2, 8, 8, 8) and batch["labels"].dtype == torch.int64
    plain = SegmentationCollator()  # rows are what the processor made: values pass unchanged
    batch = plain([{"pixel_values": np.full((1, 4, 4), 0.25, np.float32), "labels": np.array([[0, 1]] * 2)}])
    assert batch["pixel_values"].shape == (1, 1, 4, 4) and float(batch["pixel_values"].max()) == 0.25
    assert batch["labels"].tolist() == [[[0, 1], [0, 1]]]
    single = ClassificationCollator(num_labels=2)
    batch = single([{"image": np.zeros((3, 3)), "label": 1}, {"image": np.ones((3, 3)), "label": 0}])
    assert batch["labels"].tolist() == [1, 0] and batch["pixel_values"][1].min().item() == 1.0
    multi = ClassificationCollator(num_labels=3, multi_label=True)
    batch = multi([{"image": np.zeros((3, 3)), "labels": [0, 1, 1]}])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [[0.0, 1.0, 1.0]]
    with pytest.raises(InputError, match="row 0.*multi-label target"):
        multi([{"image": np.zeros((3, 3)), "labels": [2]}])
    with pytest.raises(InputError, match="equal shapes"):
        single([{"image": np.zeros((3, 3)), "label": 1}, {"image": np.zeros((4, 4)), "label": 1}])


def test_training_rows_go_through_the_models_processor_then_augmentation(shared_data):
    """A training row is the raw image through the processor saved with the weights (then augmented): exactly
    what `medhub predict` feeds the model; labels mapped to class indices; old recipe keys refused by name."""
    from medhub.training.data import load_split
    from medhub.training.recipe import build_model

    recipe = Recipe.from_dict({
        "name": "rows", "model": {"type": "unet", "config": {"base_width": 4, "depth": 2, "padding": "same"}},
        "processor": {"do_normalize": True, "image_mean": [0.5], "image_std": [0.2]},
        "data": {"name": "isbi2012", "options": {"val_slices": 4}, "label_values": {255: 1},
                 "augment": [{"name": "crop", "size": [64, 48]}, {"name": "flip"}]}})
    model = build_model(recipe)
    raw = load_split({**recipe.data, "augment": []}, "validation", model=model)[0]
    image = np.asarray(Image.open(shared_data / "isbi2012-em/train/image/16.png"), np.float32)
    np.testing.assert_allclose(raw["pixel_values"][0], (image / 255 - 0.5) / 0.2, atol=1e-6)
    assert set(np.unique(raw["labels"])) == {0, 1}
    row = load_split(recipe.data, "train", model=model, train=True)[0]
    assert row["pixel_values"].shape == (1, 64, 48) and row["labels"].shape == (64, 48)
    with pytest.raises(ConfigError, match="data.collator is no longer a recipe key; use a `processor:`"):
        Recipe.from_dict({"model": {"type": "unet"}, "data": {"name": "isbi2012", "collator": {"mean": 0.5}}})
    with pytest.raises(ConfigError, match="zoo is no longer a recipe key"):
        Recipe.from_dict({"model": {"type": "unet"}, "data": {"name": "isbi2012"}, "zoo": {"title": "x"}})


def test_train_command_runs_a_yaml_recipe(shared_data, tmp_path, capsys):
    import argparse

    from medhub.commands import add_train_parser

    config = tmp_path / "tiny.yaml"
    recipe = tiny_unet_recipe().to_dict()
    recipe["model"]["config"]["id2label"] = {str(k): v for k, v in recipe["model"]["config"]["id2label"].items()}
    config.write_text(json.dumps(recipe))  # JSON is YAML
    parser = argparse.ArgumentParser(prog="medhub")
    add_train_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", str(config), "--output-dir", str(tmp_path / "out"), "--max-steps", "2"])
    assert args.func(args) == 0
    assert "trained tiny-unet-isbi: 2 steps" in capsys.readouterr().out
    info = json.loads((tmp_path / "out" / "config.json").read_text())["weights_info"]
    assert info["command"] == f"medhub train {config}" and info["hyperparameters"]["steps"] == 2


def test_fine_tuning_starts_from_the_base_description_not_its_measurements(tmp_path):
    """A model fine-tuned from a pretrained one must not carry the base weights' metrics, calibration temperature,
    threshold or repo id (they would be applied to / claimed for the new weights); the card names the base."""
    import huggingface_hub

    from medhub import MedModel
    from medhub.models.resnet import ResNetConfig
    from medhub.training.recipe import build_model

    base = MedModel.from_config(ResNetConfig(depth=18, in_channels=1, num_labels=2))
    base.config.weights_info = {
        "repo_id": "medhub/resnet18-pneumonia", "license": "cc-by-4.0", "threshold": 0.3, "trained": True,
        "calibration": {"temperature": 1.25}, "metrics": [{"name": "auroc", "value": 0.99, "split": "test"}],
        "title": "ResNet-18 pneumonia", "training_seconds": 12.0, "inference": {"batch_size": 4}}
    base.save_pretrained(tmp_path / "base")
    recipe = Recipe.from_dict({"model": {"pretrained": str(tmp_path / "base")}, "data": {"name": "pneumoniamnist"}})
    info = build_model(recipe).config.weights_info
    assert info == {"license": "cc-by-4.0", "inference": {"batch_size": 4}, "base_model": "medhub/resnet18-pneumonia"}
    # without a repo id, a local folder is no Hub id: no base_model
    del base.config.weights_info["repo_id"]
    base.save_pretrained(tmp_path / "local")
    recipe = Recipe.from_dict({"model": {"pretrained": str(tmp_path / "local")}, "data": {"name": "pneumoniamnist"}})
    tuned = build_model(recipe)
    assert "base_model" not in tuned.config.weights_info and "calibration" not in tuned.config.weights_info
    tuned.config.weights_info = {**tuned.config.weights_info, "base_model": "medhub/resnet18-pneumonia"}
    tuned.save_pretrained(tmp_path / "tuned")
    card = huggingface_hub.ModelCard.load(tmp_path / "tuned" / "README.md")
    assert card.data.base_model == "medhub/resnet18-pneumonia"
