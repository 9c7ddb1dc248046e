"""medhub.processing: every step checked with real numbers, on real files where the data exist."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dicom_factory import write_dicom
from PIL import Image

from medhub.auto import load_image_processor
from medhub.errors import ConfigError, InputError
from medhub.io import Volume, read_nifti
from medhub.processing import GreyscaleImageProcessor, RadiographImageProcessor, VolumeImageProcessor, apply_window

DICOM_NAME = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


# -- radiographs ------------------------------------------------------------------------------------------


def test_monochrome1_is_inverted_relative_to_monochrome2(shared_data):
    folder = shared_data / "chest-xray-samples"
    processor = RadiographImageProcessor(size=256, do_normalize=False)
    mono2 = processor(folder / DICOM_NAME)["pixel_values"]
    mono1 = processor(folder / "Fake_MONOHR1.dcm")["pixel_values"]
    assert mono2.shape == (1, 1, 256, 256)
    torch.testing.assert_close(mono1, 1.0 - mono2, atol=1e-6, rtol=0)
    shown2 = processor.display_image(folder / DICOM_NAME)
    shown1 = processor.display_image(folder / "Fake_MONOHR1.dcm")
    assert shown1.dtype == np.uint8 and shown1.shape == (256, 256)
    assert np.abs(shown1.astype(int) + shown2.astype(int) - 255).max() <= 1  # rounding of exact .5 only
    # without inversion the two files are the same image
    raw = RadiographImageProcessor(size=256, do_normalize=False, invert_monochrome1=False)
    torch.testing.assert_close(raw(folder / "Fake_MONOHR1.dcm")["pixel_values"], mono2)


def test_png_radiograph_three_channels_with_imagenet_normalisation(shared_data):
    path = shared_data / "chest-xray-samples" / "00000001_000.png"
    processor = RadiographImageProcessor(num_channels=3, size=256, do_center_crop=True, crop_size=224)
    assert processor.image_mean == [0.485, 0.456, 0.406] and processor.image_std == [0.229, 0.224, 0.225]
    values = processor([path, Image.open(path)])["pixel_values"]
    assert values.shape == (2, 3, 224, 224) and values.dtype == torch.float32
    torch.testing.assert_close(values[0], values[1])  # a path and a PIL image give the same input
    std, mean = torch.tensor(processor.image_std)[:, None, None], torch.tensor(processor.image_mean)[:, None, None]
    unit = values[0] * std + mean
    torch.testing.assert_close(unit[0], unit[2])  # three copies of one grey image
    shown = processor.display_image(path)
    np.testing.assert_allclose(unit[0].numpy() * 255.0, shown, atol=0.51)


def test_rgb_radiograph_becomes_luminance_without_resize(shared_data):
    path = shared_data / "chest-xray-samples" / "tb0005.png"
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    processor = RadiographImageProcessor(do_resize=False, do_normalize=False)
    values = processor(path)["pixel_values"][0, 0].numpy()
    np.testing.assert_allclose(values, rgb @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0, atol=1e-5)


def test_dicom_window_and_ct_rescale(tmp_path):
    stored = np.array([[0, 500, 1000], [1040, 1080, 2000]], dtype=np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", stored, slope=1.0, intercept=-1024.0, window=(40.0, 80.0))
    processor = RadiographImageProcessor(do_resize=False, do_normalize=False)
    values = processor(path)["pixel_values"][0, 0].numpy()
    hu = stored.astype(np.float32) - 1024.0  # -1024, -524, -24, 16, 56, 976
    np.testing.assert_allclose(values, apply_window(hu, 40.0, 80.0))
    # LINEAR (PS3.3 C.11.2.1.2): c' = 39.5, w' = 79 -> 16 HU maps to (16 - 39.5) / 79 + 0.5
    assert values[1, 0] == pytest.approx((16 - 39.5) / 79 + 0.5)
    assert values[0, 0] == 0.0 and values[1, 2] == 1.0
    no_window = RadiographImageProcessor(do_resize=False, do_normalize=False, use_dicom_voi=False)
    np.testing.assert_allclose(no_window(path)["pixel_values"][0, 0].numpy(), (hu - hu.min()) / (hu.max() - hu.min()),
                               rtol=1e-6)


def test_radiograph_errors():
    processor = RadiographImageProcessor(size=8)
    with pytest.raises(InputError, match="non-finite"):
        processor(np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32))
    with pytest.raises(InputError, match=r"expected \(H, W\) or \(H, W, C\)"):
        processor(np.zeros((4, 4, 4, 4), np.uint8))
    with pytest.raises(InputError, match="expected \\(H, W\\) or \\(H, W, C\\) with C in 1, 2, 3, 4"):
        processor(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ConfigError, match="num_channels"):
        RadiographImageProcessor(num_channels=2)
    with pytest.raises(ConfigError, match="image_mean"):
        RadiographImageProcessor(num_channels=3, image_mean=[0.5])


def test_processor_json_round_trip_and_dispatch(tmp_path):
    processor = RadiographImageProcessor(num_channels=3, size={"height": 320, "width": 256}, resample="area")
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["image_processor_type"] == "RadiographImageProcessor"
    assert saved["size"] == {"height": 320, "width": 256} and saved["resample"] == "area"
    assert saved["invert_monochrome1"] is True and saved["use_dicom_voi"] is True  # every step is a field
    loaded = load_image_processor(tmp_path)
    assert type(loaded) is RadiographImageProcessor and loaded.to_dict() == processor.to_dict()
    assert RadiographImageProcessor.from_pretrained(tmp_path).to_dict() == processor.to_dict()
    saved["brightness_boost"] = 2
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="brightness_boost"):
        load_image_processor(tmp_path)


# -- greyscale (EM) ---------------------------------------------------------------------------------------


def test_greyscale_em_image(shared_data):
    path = shared_data / "isbi2012-em" / "train" / "image" / "0.png"
    raw = np.asarray(Image.open(path), dtype=np.float32)
    values = GreyscaleImageProcessor()(path)["pixel_values"]
    assert values.shape == (1, 1, 512, 512)
    np.testing.assert_allclose(values[0, 0].numpy(), raw / 255.0)
    normalised = GreyscaleImageProcessor(do_resize=True, size=256, do_normalize=True, image_mean=[0.5],
                                         image_std=[0.25])
    small = normalised(path)["pixel_values"]
    assert small.shape == (1, 1, 256, 256)
    assert float(small.mean()) == pytest.approx((raw.mean() / 255.0 - 0.5) / 0.25, abs=1e-3)
    assert "do_center_crop" not in normalised.to_dict()


def test_greyscale_errors():
    processor = GreyscaleImageProcessor()
    with pytest.raises(InputError, match="colour image"):
        processor(np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.zeros((4, 4))], axis=-1).astype(np.uint8))
    with pytest.raises(InputError, match=r"expected \[0, 1\]"):
        processor(np.full((4, 4), 3.0, np.float32))
    grey_rgb = np.repeat(np.arange(16, dtype=np.uint8).reshape(4, 4, 1), 3, axis=-1)
    np.testing.assert_allclose(processor(grey_rgb)["pixel_values"][0, 0].numpy(), grey_rgb[..., 0] / 255.0)


# -- volumes ----------------------------------------------------------------------------------------------


def test_brats_two_channels_reoriented_and_zscored(shared_data):
    folder = shared_data / "brats2015-examples" / "brats_2013_pat0003_1"
    flair = read_nifti(folder / "Flair_subtrMeanDivStd.nii.gz")
    t1c = read_nifti(folder / "T1c_subtrMeanDivStd.nii.gz")
    processor = VolumeImageProcessor(channel_names=["flair", "t1c"], orientation="RAS")
    out = processor({"t1c": t1c, "flair": flair}, labels=folder / "OTMultiClass.nii.gz")
    values, labels = out["pixel_values"], out["labels"]
    assert values.shape == (1, 2, 240, 240, 155) and labels.shape == (1, 240, 240, 155)
    np.testing.assert_array_equal(values[0, 0].numpy(), flair.array[::-1, ::-1, :])  # LPS -> RAS flip, order kept
    np.testing.assert_array_equal(values[0, 1].numpy(), t1c.array[::-1, ::-1, :])
    assert labels.dtype == torch.int64 and set(torch.unique(labels).tolist()) <= {0, 1, 2, 3, 4}

    zscore = VolumeImageProcessor(channel_names=["flair"], orientation=None, intensity_normalization="zscore",
                                  zscore_region="mask")
    z = zscore({"flair": flair}, mask=folder / "brainmask.nii.gz")["pixel_values"][0, 0].numpy()
    brain = read_nifti(folder / "brainmask.nii.gz").array > 0
    assert z[brain].mean() == pytest.approx(0.0, abs=1e-4) and z[brain].std() == pytest.approx(1.0, abs=1e-4)
    assert np.all(z[~brain] == 0)


def test_resampling_to_target_spacing_and_ct_window():
    array = np.arange(9 * 7 * 5, dtype=np.float32).reshape(9, 7, 5) * 10.0 - 1000.0  # a linear ramp in HU
    volume = Volume(array, np.diag([-1.0, -1.0, 2.0, 1.0]), (1.0, 1.0, 2.0), "synthetic")
    processor = VolumeImageProcessor(orientation="RAS", target_spacing=[2.0, 2.0, 1.0],
                                     intensity_normalization="ct_window", window_center=-500.0, window_width=1000.0)
    processed = processor.preprocess_subject(volume)
    image, affine = processed.pixel_values, processed.affine
    assert image.shape == (1, 5, 4, 9)  # 8 mm, 6 mm and 8 mm extents kept: 0..8 step 2, 0..6 step 2, 0..8 step 1
    # RAS, exact target spacing, the first voxel centre of the reoriented input kept (-8, -6, 0)
    np.testing.assert_allclose(affine, [[2, 0, 0, -8], [0, 2, 0, -6], [0, 0, 1, 0], [0, 0, 0, 1]])
    # voxel (2, 1, 3) is at RAS (-4, -4, 3) = input voxel (4, 4, 1.5) of the LPS array; trilinear on a ramp is exact
    hu = (4 * 35 + 4 * 5 + 1.5) * 10.0 - 1000.0
    assert image[0, 2, 1, 3] == pytest.approx(np.clip((hu + 1000.0) / 1000.0, 0, 1), abs=1e-5)
    labels = np.zeros((9, 7, 5), np.float32)
    labels[4, 4, 1] = 3
    resampled = processor.preprocess_subject(volume, labels=Volume(labels, volume.affine, volume.spacing)).labels
    assert set(np.unique(resampled).tolist()) == {0, 3}  # nearest neighbour: labels stay labels


def test_roi_mask_given_or_derived_from_the_constant_background(shared_data):
    """The ROI: the mask passed (the brain mask), else the voxels that differ from the background value (the
    most frequent corner value): on the BraTS examples both give exactly the brain mask, also for a crop with
    brain at four of its corners."""
    subject = shared_data / "brats2015-examples" / "brats_2013_pat0004_1"
    flair, t1c = (read_nifti(subject / f"{c}_subtrMeanDivStd.nii.gz") for c in ("Flair", "T1c"))
    brain = read_nifti(subject / "brainmask.nii.gz")
    processor = VolumeImageProcessor(channel_names=["flair", "t1c"], orientation="LPS", mask_name="brainmask",
                                     mask_fallback="foreground")
    given = processor.preprocess_subject({"flair": flair, "t1c": t1c}, mask=brain)
    derived = processor.preprocess_subject({"flair": flair, "t1c": t1c})
    np.testing.assert_array_equal(given.roi_mask, brain.array > 0)
    np.testing.assert_array_equal(derived.roi_mask, brain.array > 0)
    np.testing.assert_array_equal(given.pixel_values[0], flair.array)  # LPS stored, intensity "none": unchanged
    crop = (slice(150, 190), slice(100, 140), slice(80, 112))  # x 150..184 is brain, 185..189 background
    arrays = {c: v.array[crop] for c, v in (("flair", flair), ("t1c", t1c))}
    np.testing.assert_array_equal(processor.preprocess_subject(arrays).roi_mask, brain.array[crop] > 0)
    with pytest.raises(ConfigError, match="mask_name"):
        VolumeImageProcessor(channel_names=["flair"], mask_name="flair")


def test_volume_errors():
    processor = VolumeImageProcessor(channel_names=["flair", "t1c"])
    with pytest.raises(InputError, match="got 1 channel"):
        processor(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match="missing \\['t1c'\\]"):
        processor({"flair": np.zeros((4, 4, 4), np.float32)})
    with pytest.raises(InputError, match="non-finite"):
        processor(np.full((2, 4, 4, 4), np.inf, np.float32))
    with pytest.raises(InputError, match=r"expected \(X, Y, Z\) or \(C, X, Y, Z\)"):
        processor(np.zeros((4, 4), np.float32))
    with pytest.raises(ConfigError, match="orientation"):
        VolumeImageProcessor(orientation="RRS")
    with pytest.raises(ConfigError, match="window_width"):
        VolumeImageProcessor(intensity_normalization="ct_window")
    with pytest.raises(InputError, match="zscore_region='mask' needs a mask"):
        VolumeImageProcessor(intensity_normalization="zscore", zscore_region="mask")(np.ones((3, 3, 3), np.float32))
