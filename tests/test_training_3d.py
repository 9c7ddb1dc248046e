"""3D patch training on real BraTS 2015 subjects: tiny DeepMedic and tiny 3D Attention U-Net, a few steps each,
deterministic patches through the model's processor, the recipe's `data.patches` checks and the whole-volume
BraTS evaluation (the path `medhub predict` runs: processor, brain-mask ROI, the model's inferer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medhub import ConfigError, MedConfig, MedModel
from medhub.data.recipe_data import BRATS_SPLITS
from medhub.evaluation import BRATS_REGIONS, evaluate_model, region_dice
from medhub.processing import VolumeImageProcessor
from medhub.training import Recipe, train
from medhub.training.patches3d import load_patch_split

# The BraTS examples as stored (already normalised), the brain mask as the ROI.
BRATS_PROCESSOR = {"type": "VolumeImageProcessor", "channel_names": ["flair", "t1c"], "orientation": "LPS",
                   "intensity_normalization": "none", "mask_name": "brainmask", "mask_fallback": "foreground"}

TINY_DEEPMEDIC = {"in_channels": 2, "num_labels": 5, "normal_feature_maps": [4, 4, 4],
                  "normal_kernel_sizes": [[3, 3, 3]] * 3, "normal_residual_layers": [],
                  "subsample_factors": [[3, 3, 3]], "fc_feature_maps": [8], "fc_first_kernel_size": [1, 1, 1],
                  "fc_residual_layers": [], "fc_dropout_rates": [], "train_segment_size": [13, 13, 13],
                  "inference_segment_size": [85, 85, 85]}
TINY_ATTENTION_UNET = {"spatial_dims": 3, "in_channels": 2, "num_labels": 5, "base_width": 4, "depth": 2,
                       "norm": "batch", "deep_supervision": True, "loss": "dice_ce"}


def recipe_3d(model_type: str, config: dict, patch_size, label_size, steps: int = 3) -> Recipe:
    return Recipe.from_dict({
        "name": f"tiny-{model_type}-brats", "seed": 1,
        "model": {"type": model_type, "config": config},
        "processor": BRATS_PROCESSOR,
        "data": {"name": "brats2015-examples", "limit_eval": 1,
                 "patches": {"patch_size": patch_size, "label_size": label_size, "samples": 2 * steps,
                             "eval_samples": 2, "flip_axes": [0]}},
        "inference": {"roi_size": [64, 64, 64]},
        "training": {"max_steps": steps, "per_device_train_batch_size": 2, "per_device_eval_batch_size": 2,
                     "learning_rate": 0.003, "logging_steps": 1, "save_strategy": "no", "disable_tqdm": True,
                     "use_cpu": True},
        "evaluation": {"metric": "mean_dice"},
    })


@pytest.mark.parametrize("model_type, config, patch_size, label_size", [
    ("deepmedic", TINY_DEEPMEDIC, [25, 25, 25], [7, 7, 7]),   # model.context_size(7) = 25 (RF 7, x3 pathway)
    ("attention-unet", TINY_ATTENTION_UNET, [16, 16, 16], [16, 16, 16]),
])
def test_tiny_3d_models_train_on_brats_patches(shared_data, tmp_path, model_type, config, patch_size, label_size):
    result = train(recipe_3d(model_type, config, patch_size, label_size), tmp_path / "run")
    losses = [log["loss"] for log in result.trainer.state.log_history if "loss" in log]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert 0.0 <= result.metrics["dice_whole_tumor"] <= 1.0  # whole validation volume, as `medhub predict` runs it
    info = result.model.config.weights_info
    assert info["patches"]["patch_size"] == patch_size and (tmp_path / "run" / "model.safetensors").is_file()
    assert info["inference"] == {"roi_size": [64, 64, 64]}
    saved = MedModel.from_pretrained(tmp_path / "run")  # the processor the patches went through travels along
    assert saved.image_processor.to_dict() == result.model.image_processor.to_dict()
    assert saved.image_processor.mask_name == "brainmask"


def test_patches_are_deterministic_balanced_and_from_the_training_subjects(shared_data):
    data = {"name": "brats2015-examples", "patches": {"patch_size": [9, 9, 9], "samples": 40}}
    a = load_patch_split(data, "train", seed=5, train=True)
    b = load_patch_split(data, "train", seed=5, train=True)
    assert [s.subject_id for s in a.subjects] == BRATS_SPLITS["train"]
    assert all(np.array_equal(a[i]["pixel_values"], b[i]["pixel_values"]) for i in (0, 7, 39))
    assert a[0]["pixel_values"].shape == (2, 9, 9, 9) and a[0]["labels"].shape == (9, 9, 9)
    centre_fg = np.mean([a[i]["labels"][4, 4, 4] > 0 for i in range(40)])
    assert 0.25 <= centre_fg <= 0.75  # the 50/50 foreground/background sampling of DeepMedic
    other_seed = load_patch_split(data, "train", seed=6, train=True)
    assert not np.array_equal(a[0]["pixel_values"], other_seed[0]["pixel_values"])


def test_patch_recipe_errors_name_the_key(shared_data):
    with pytest.raises(ConfigError, match="patch_size"):
        load_patch_split({"name": "brats2015-examples", "patches": {"samples": 3}}, "train")
    with pytest.raises(ConfigError, match="unknown data.patches"):
        load_patch_split({"name": "brats2015-examples", "patches": {"patch_size": 9, "sample": 3}}, "train")


def test_region_dice_follows_the_brats_convention():
    label = np.zeros((4, 4, 4), np.int64)
    label[0, 0, :4] = [1, 2, 3, 4]
    pred = label.copy()
    pred[0, 0, 1] = 4  # oedema called enhancing: whole tumour still perfect
    scores = region_dice(pred, label, 5, ["background", "necrosis", "edema", "non-enhancing", "enhancing"])
    assert scores["dice_whole_tumor"] == 1.0
    assert scores["dice_tumor_core"] == pytest.approx(2 * 3 / (4 + 3))
    assert scores["dice_enhancing_tumor"] == pytest.approx(2 * 1 / (2 + 1))
    assert set(BRATS_REGIONS) == {"whole_tumor", "tumor_core", "enhancing_tumor"}


@pytest.mark.parametrize("model_type, config", [("deepmedic", TINY_DEEPMEDIC),
                                                ("attention-unet", TINY_ATTENTION_UNET)])
def test_whole_volume_evaluation_of_tiny_models(shared_data, model_type, config):
    torch.manual_seed(0)
    model = MedModel.from_config(MedConfig.for_model(f"medhub-{model_type}", **config))
    model.image_processor = VolumeImageProcessor.from_dict({k: v for k, v in BRATS_PROCESSOR.items() if k != "type"})
    data = {"name": "brats2015-examples", "patches": {"patch_size": 16}}
    result = evaluate_model(model, data, "test", limit=1)
    assert result.num_examples == 1 and result.extra["subjects"] == BRATS_SPLITS["test"][:1]
    for region in BRATS_REGIONS:
        assert 0.0 <= result.metrics[f"dice_{region}"] <= 1.0
