"""recipes/zoo/unet-nuclei.yaml: valid in the one recipe schema, declared pending (no catalogue entry until it
has weights), and its whole pipeline - dsb2018-nuclei 3-class targets, the augmentation (intensity inversion
included), training, saving the nuclei post-processing, evaluation per image type - runs for two steps."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO_ROOT

from medhub.training import load_recipe

RECIPE = REPO_ROOT / "recipes" / "zoo" / "unet-nuclei.yaml"


def test_recipe_is_valid_and_pending(tmp_path):
    from medhub.inference import instance_method
    from medhub.training.data import build_augmentation
    from medhub.training.recipe import build_model
    from medhub.training.trainer import training_arguments
    from medhub.zoo.catalog import CHECKPOINTS

    recipe = load_recipe(RECIPE)
    assert recipe.name == "unet-nuclei" and "PENDING" in RECIPE.read_text().splitlines()[0]
    assert "unet-nuclei" not in {c.id for c in CHECKPOINTS}  # catalogued once trained weights exist
    assert training_arguments(recipe, tmp_path).seed == 0
    assert instance_method(recipe.inference["instances"])[0] == "nuclei_watershed"
    model = build_model(recipe)
    assert model.config.num_labels == 3 and type(model.image_processor).__name__ == "RadiographImageProcessor"
    steps = build_augmentation(recipe.data["augment"], 2, ("labels",))
    assert [type(s).__name__ for s in steps][3] == "RandomInvert"
    sample = {"pixel_values": np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 4, 4),
              "labels": np.zeros((4, 4), np.int64)}
    inverted = steps[3].transform(sample["pixel_values"].copy(), np.random.default_rng(0))
    np.testing.assert_array_equal(inverted, -sample["pixel_values"])  # mean 0.5: inversion is negation


@pytest.mark.slow
@pytest.mark.shared_data
def test_recipe_trains_two_steps_end_to_end(shared_data, tmp_path):
    from medhub.training import train
    from medhub.weights_info import read_weights_info

    recipe = load_recipe(RECIPE)
    recipe.model["config"].update(base_width=4, depth=2)  # the recipe's pipeline, a tiny network
    recipe.data.update(limit_train=4, limit_eval=2)
    recipe.training.update(per_device_train_batch_size=2, dataloader_num_workers=0, logging_steps=1)
    result = train(recipe, tmp_path / "out", max_steps=2)
    assert result.train_metrics["global_step"] == 2
    assert {"dsb_score", "f1_50", "dice_boundary"} <= set(result.metrics)
    info = read_weights_info(result.model.config)
    assert info["instances"]["method"] == "nuclei_watershed" and info["data_options"]["mask"] == "three_class"
