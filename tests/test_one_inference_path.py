"""One inference path: `medhub predict`, `medhub.pipeline`, `medhub evaluate` and the Space give the same mask on
the same image or subject, for every zoo segmenter (they all run the processor saved with the weights, then
`model.infer`, the model's own inferer).

2D: the ISBI 2012 U-Net on held-out slice 16. 3D: each BraTS checkpoint on a 40x40x32 crop of held-out subject
pat0004 around its tumour, written as a subject folder (FLAIR, T1c, brain mask, labels) the way users have them;
the Space gets no mask, so its ROI is the processor's fallback (the volumes' constant background), which on these
volumes is exactly the brain mask.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import medhub
from medhub import metrics as M
from medhub.evaluation import evaluate_model, region_dice
from medhub.predict import predict_paths
from medhub.zoo import checkpoint

ZOO = Path(__file__).resolve().parents[1] / "model_zoo"
PAT0004_CROP = (slice(150, 190), slice(100, 140), slice(80, 112))
CROP_FILES = {"flair": "Flair_subtrMeanDivStd.nii.gz", "t1c": "T1c_subtrMeanDivStd.nii.gz",
              "label": "OTMultiClass.nii.gz", "brainmask": "brainmask.nii.gz"}


def zoo_model(name: str):
    if not (ZOO / name / "config.json").is_file():
        pytest.skip(f"model_zoo/{name} not present")
    return medhub.MedModel.from_pretrained(ZOO / name)


def space_model(name: str, model):
    from medhub.spaces.loading import LoadedModel

    # Every path compared in exact fp32 (a Space's default, "auto", is bf16 on CPUs with native bf16).
    return LoadedModel(checkpoint(name), model, True, "local zoo", f"medhub/{name}", precision="fp32")


def labels_from_pipeline(results: list[dict]) -> np.ndarray:
    """The label map of a pipeline's per-class masks (each pixel in exactly one class's mask)."""
    masks = np.stack([np.asarray(r["mask"]) > 0 for r in results])
    assert (masks.sum(0) == 1).all()
    return masks.argmax(0)


def test_isbi_unet_same_mask_through_every_path(shared_data, tmp_path):
    from medhub.spaces.segment2d import segment

    model = zoo_model("unet-isbi2012")
    image = shared_data / "isbi2012-em" / "train" / "image" / "16.png"  # the first held-out validation slice
    truth = (np.asarray(Image.open(shared_data / "isbi2012-em" / "train" / "label" / "16.png")) == 255).astype(int)

    assert predict_paths(model, [image], tmp_path, progress=False).ok
    predicted = np.asarray(Image.open(tmp_path / "16_mask.png")).astype(int)
    piped = labels_from_pipeline(medhub.pipeline("image-segmentation", model)(str(image)))
    _, spaced, _, _, cells = segment(space_model("unet-isbi2012", model), str(image))
    np.testing.assert_array_equal(piped, predicted)
    np.testing.assert_array_equal(spaced, predicted)
    assert cells is not None and cells.max() > 50  # the watershed cells the weights name (94 on this slice)

    data = {"name": "isbi2012", "options": {"val_slices": 4}, "label_values": {255: 1}}
    evaluated = evaluate_model(model, data, "validation", limit=1).metrics
    assert evaluated["pixel_error"] == pytest.approx(M.pixel_error(predicted.astype(np.float32),
                                                                   truth.astype(np.float32)), abs=1e-12)
    assert evaluated["dice_cell"] == pytest.approx(M.dice(predicted, truth, num_classes=2)[1], abs=1e-12)


@pytest.fixture(scope="module")
def pat0004_crop(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("subjects") / "pat0004"
    folder.mkdir()
    source = shared_data / "brats2015-examples" / "brats_2013_pat0004_1"
    for name, file in CROP_FILES.items():
        nib.save(nib.load(source / file).slicer[PAT0004_CROP], folder / f"{name}.nii.gz")
    return folder


@pytest.mark.parametrize("name", ["attention-unet-brats", "deepmedic-brats"])
def test_brats_models_same_mask_through_every_path(pat0004_crop, tmp_path, name):
    from medhub.spaces.segment3d import REGIONS, segment_volume_files

    model = zoo_model(name)
    files = {c: str(pat0004_crop / f"{c}.nii.gz") for c in ("flair", "t1c", "brainmask")}
    truth = np.rint(np.asarray(nib.load(pat0004_crop / "label.nii.gz").dataobj)).astype(np.int64)

    assert predict_paths(model, [pat0004_crop], tmp_path, progress=False).ok
    seg = nib.load(tmp_path / "pat0004_seg.nii.gz")
    predicted = np.asarray(seg.dataobj).astype(np.int64)
    np.testing.assert_allclose(seg.affine, nib.load(files["flair"]).affine)
    assert predicted.shape == truth.shape and set(np.unique(predicted)) <= {0, 1, 2, 3, 4}
    assert (predicted[np.asarray(nib.load(files["brainmask"]).dataobj) == 0] == 0).all()  # nothing outside the ROI

    piped = labels_from_pipeline(medhub.pipeline("image-segmentation", model)(files))
    whole = next(r for r in REGIONS if REGIONS[r] is None)
    spaced = segment_volume_files(space_model(name, model), [files["flair"], files["t1c"]], whole).labels
    np.testing.assert_array_equal(piped, predicted)
    np.testing.assert_array_equal(spaced, predicted)

    evaluated = evaluate_model(model, {"name": str(pat0004_crop.parent)}, "train").metrics
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    for key, value in region_dice(predicted, truth, model.config.num_labels, names).items():
        assert evaluated[key] == pytest.approx(value, abs=1e-12), key
    assert evaluated["dice_whole_tumor"] > 0.5  # a real tumour, really found


def test_saved_inference_settings_are_what_runs():
    """The weights carry how they are run (roi_size, overlap, ...) and the model's inferer uses exactly that."""
    for name in ("unet-isbi2012", "attention-unet-brats"):
        model = zoo_model(name)
        saved = json.loads((ZOO / name / "config.json").read_text())["weights_info"]["inference"]
        settings = model.inferer().settings
        assert list(np.atleast_1d(settings.roi_size)) == saved["roi_size"] and settings.overlap == saved["overlap"]
        assert model.inferer(roi_size=64).settings.roi_size == 64  # a caller's override wins
