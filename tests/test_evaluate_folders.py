"""`medhub evaluate` on a user's own labelled data: a class-per-folder tree and a MedMNIST `.npz` file give the
numbers of the named dataset on the same images; class folders are matched to the model's labels by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import medhub
from medhub.commands.evaluate import evaluate_command
from medhub.errors import InputError
from medhub.models.chexnet import CheXNetConfig
from medhub.processing import RadiographImageProcessor

COUNT = 40


@pytest.fixture(scope="module")
def pneumonia(shared_data):
    with np.load(shared_data / "pneumoniamnist/pneumoniamnist_trainval.npz") as data:
        return data["val_images"][:COUNT], data["val_labels"][:COUNT]


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(CheXNetConfig.pneumonia(growth_rate=4, block_config=[1, 2], bn_size=2,
                                                                num_init_features=8, in_channels=1))
    model.image_processor = RadiographImageProcessor(num_channels=1, size=32)
    model.save_pretrained(tmp_path / "model")
    return str(tmp_path / "model")


def metrics_of(result) -> dict[str, float]:
    return {row["name"]: row["value"] for row in result.card_metrics()}


def test_class_folders_and_npz_give_the_named_datasets_numbers(pneumonia, model_dir, tmp_path):
    images, labels = pneumonia
    # Capitalised folder names, listed in the opposite order of the model's labels: matched by name.
    names = {0: "Normal", 1: "PNEUMONIA"}
    for i, (image, label) in enumerate(zip(images, labels[:, 0])):
        (tmp_path / "folders" / names[int(label)]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(tmp_path / "folders" / names[int(label)] / f"{i:03d}.png")
    np.savez(tmp_path / "mine.npz", val_images=images, val_labels=labels, test_images=images[:5],
             test_labels=labels[:5])

    named = evaluate_command(model_dir, "pneumoniamnist", limit=COUNT, threshold=0.5)
    folder = evaluate_command(model_dir, str(tmp_path / "folders"), threshold=0.5)
    npz = evaluate_command(model_dir, str(tmp_path / "mine.npz"), threshold=0.5)
    assert named.num_examples == folder.num_examples == npz.num_examples == COUNT
    assert (folder.split, npz.split) == ("train", "validation")
    assert metrics_of(folder) == pytest.approx(metrics_of(named), abs=1e-6)
    assert metrics_of(npz) == pytest.approx(metrics_of(named), abs=1e-6)
    assert 0.0 < metrics_of(named)["auroc"] < 1.0
    assert evaluate_command(model_dir, str(tmp_path / "mine.npz"), split="test").num_examples == 5


def test_class_folders_that_are_not_the_models_labels_are_refused(pneumonia, model_dir, tmp_path):
    images, _ = pneumonia
    for name in ("cat", "dog"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        Image.fromarray(images[0]).save(tmp_path / "pets" / name / "a.png")
    with pytest.raises(InputError, match=r"\['cat', 'dog'\] are not labels of this model"):
        evaluate_command(model_dir, str(tmp_path / "pets"))
    with pytest.raises(InputError, match="no MedMNIST split"):
        np.savez(tmp_path / "other.npz", x=np.zeros(3))
        evaluate_command(model_dir, str(tmp_path / "other.npz"))


def test_a_folder_of_subjects_is_evaluated_subject_by_subject(shared_data, tmp_path):
    """Subject folders (channels and the label map found by name) give the Dice of `medhub predict`'s labels."""
    import nibabel as nib

    from medhub.evaluation.task_metrics import label_names, region_dice
    from medhub.models.attention_unet import AttentionUNetConfig

    crop = (slice(100, 132), slice(100, 132), slice(60, 84))
    source = shared_data / "brats2015-examples/brats_2013_pat0003_1"
    subject = tmp_path / "subjects/pat0003"
    subject.mkdir(parents=True)
    for name, target in (("Flair_subtrMeanDivStd", "Flair"), ("T1c_subtrMeanDivStd", "T1c"),
                         ("OTMultiClass", "label")):
        nib.save(nib.load(source / f"{name}.nii.gz").slicer[crop], subject / f"{target}.nii.gz")
    torch.manual_seed(0)
    config = AttentionUNetConfig(spatial_dims=3, base_width=2, depth=2, num_labels=5, in_channels=2,
                                 channel_names=["flair", "t1c"], deep_supervision=False)
    model = medhub.MedModel.from_config(config).eval()
    model.save_pretrained(tmp_path / "att")
    result = evaluate_command(str(tmp_path / "att"), str(tmp_path / "subjects"))
    assert result.num_examples == 1 and result.extra["subjects"] == ["pat0003"]
    labels, _ = medhub.predict.segment_subject(model, [subject / "Flair.nii.gz", subject / "T1c.nii.gz"])
    truth = np.rint(nib.load(subject / "label.nii.gz").get_fdata()).astype(np.int64)
    expected = region_dice(labels.astype(np.int64), truth, 5, label_names(model.config))
    assert {k: result.metrics[k] for k in expected} == pytest.approx(expected, abs=1e-9)
