"""`medhub predict` / `medhub.predict`: end to end on real images and volumes with tiny random models."""

from __future__ import annotations

import csv
import shutil

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

import medhub
from medhub.commands.predict import main as predict_main
from medhub.errors import InputError
from medhub.models.attention_unet import AttentionUNetConfig
from medhub.models.chexnet import CheXNetConfig
from medhub.models.deepmedic import DeepMedicConfig
from medhub.models.unet import UNetConfig
from medhub.models.vgg import VGGConfig
from medhub.predict import collect_cases, predict_paths, segment_subject
from medhub.processing import RadiographImageProcessor, VolumeImageProcessor

CXR_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
SUBJECT = "brats2015-examples/brats_2013_pat0003_1"
CROP = (slice(100, 132), slice(100, 132), slice(60, 84))  # 32 x 32 x 24 voxels around the tumour


def save_tiny(config, folder, processor=None):
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(config)
    model.image_processor = processor
    model.save_pretrained(folder)
    return str(folder)


def run_cli(*argv) -> int:
    return predict_main([*map(str, argv), "--no-progress"])


@pytest.fixture
def brats_subject(shared_data, tmp_path):
    """A cropped copy of a BraTS subject (FLAIR + T1c + labels), geometry kept by nibabel's slicer."""
    folder = tmp_path / "pat0003"
    folder.mkdir()
    for name in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz", "OTMultiClass.nii.gz"):
        image = nib.load(shared_data / SUBJECT / name)
        nib.save(image.slicer[CROP], folder / name)
    return folder


# -- 2D segmentation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_unet_on_an_isbi_slice_writes_mask_and_overlay(shared_data, tmp_path, padding):
    model = save_tiny(UNetConfig(base_width=4, depth=2, padding=padding, num_labels=2), tmp_path / "unet")
    image = shared_data / "isbi2012-em/train/image/0.png"
    assert run_cli(model, image, "--out", tmp_path / "out", "--roi-size", "256") == 0
    mask = np.array(Image.open(tmp_path / "out/0_mask.png"))
    overlay = np.array(Image.open(tmp_path / "out/0_overlay.png"))
    assert mask.shape == (512, 512) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert overlay.shape == (512, 512, 3)
    grey = np.array(Image.open(image))
    background = mask == 0
    assert np.array_equal(overlay[background][:, 0], grey[background])  # label 0 leaves the image untouched
    assert not list((tmp_path / "out").glob(".medhub-tmp-*"))


def test_sliding_window_and_whole_image_agree_in_the_interior(shared_data, tmp_path):
    """A 'same' U-Net seen whole or through Gaussian-weighted windows gives (almost) the same labels."""
    model_dir = save_tiny(UNetConfig(base_width=4, depth=2, padding="same", num_labels=3), tmp_path / "unet")
    image = shared_data / "isbi2012-em/train/image/1.png"
    predict_paths(model_dir, [image], tmp_path / "whole", progress=False)
    predict_paths(model_dir, [image], tmp_path / "windows", roi_size=192, progress=False)
    whole = np.array(Image.open(tmp_path / "whole/1_mask.png"))
    windows = np.array(Image.open(tmp_path / "windows/1_mask.png"))
    assert whole.shape == windows.shape == (512, 512)
    assert (whole == windows).mean() > 0.9


def test_folder_rerun_skips_and_a_corrupt_file_is_reported(shared_data, tmp_path, capsys):
    model = save_tiny(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2), tmp_path / "unet")
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "isbi2012-em/train/image/3.png", folder / "a.png")
    shutil.copy(shared_data / "isbi2012-em/train/image/4.png", folder / "sub/b.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (folder / "notes.txt").write_text("not an input")

    assert run_cli(model, folder, "--out", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "1 input(s) failed" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "a_mask.png", "a_overlay.png", "b_mask.png", "b_overlay.png", "medhub-manifest.jsonl"]

    before = (tmp_path / "out/a_mask.png").stat().st_mtime_ns
    report = predict_paths(model, [folder], tmp_path / "out", progress=False, precision="auto")  # as the CLI
    assert len(report.skipped) == 2 and not report.predicted and len(report.failed) == 1
    assert (tmp_path / "out/a_mask.png").stat().st_mtime_ns == before
    report = predict_paths(model, [folder / "a.png"], tmp_path / "out", overwrite=True, progress=False)
    assert list(report.predicted) == [str(folder / "a.png")] and report.ok


def test_clashing_stems_get_their_folder_names(shared_data, tmp_path):
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same"))
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        shutil.copy(shared_data / "isbi2012-em/train/image/0.png", tmp_path / sub / "0.png")
    assert sorted(c.stem for c in collect_cases(model, [tmp_path])) == ["x_0", "y_0"]


def test_a_missing_or_unreadable_single_file_names_it(tmp_path):
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same"))
    bad = tmp_path / "scan.dcm"
    bad.write_bytes(b"\0" * 200)
    report = predict_paths(model, [bad, tmp_path / "missing.png"], tmp_path / "out", progress=False)
    messages = dict(report.failed)
    assert str(bad) in messages[str(bad)] and "unsupported or unrecognised" in messages[str(bad)]
    assert "no such file" in messages[str(tmp_path / "missing.png")]


# -- classification ------------------------------------------------------------------------------------------
def test_chexnet_single_label_csv_and_heatmaps_on_png_jpeg_and_dicom(shared_data, tmp_path):
    config = CheXNetConfig.pneumonia(growth_rate=4, block_config=[1, 2], num_init_features=8, bn_size=2)
    model = save_tiny(config, tmp_path / "chexnet")  # saves the family's processor: 224 x 224, ImageNet stats
    samples = shared_data / "chest-xray-samples"
    inputs = [samples / "00000001_000.png", samples / "16747_3_1.jpg", samples / CXR_DICOM]
    assert run_cli(model, *inputs, "--out", tmp_path / "out", "--tta") == 0
    with open(tmp_path / "out/predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["input", "predicted", "normal", "pneumonia"]
    assert [r["input"] for r in rows] == [str(p) for p in inputs]
    for row in rows:
        assert float(row["normal"]) + float(row["pneumonia"]) == pytest.approx(1.0, abs=1e-5)
    for path in inputs:
        stem = path.name[: -len(path.suffix)]
        heatmap = np.array(Image.open(tmp_path / f"out/{stem}_heatmap.png"))
        original = medhub.io.read_any(path)
        size = (original.pixels.shape[:2])
        assert heatmap.shape == (*size, 3) and heatmap.dtype == np.uint8

    # Rerun with the same settings: every input skipped, the CSV keeps its rows; a new input is appended.
    report = predict_paths(model, [*inputs, samples / "h0001.png"], tmp_path / "out", tta=True, progress=False,
                           precision="auto")  # the CLI's default
    assert len(report.skipped) == 3 and list(report.predicted) == [str(samples / "h0001.png")]
    with open(tmp_path / "out/predictions.csv", newline="") as fh:
        assert [r["input"] for r in csv.DictReader(fh)] == [*map(str, inputs), str(samples / "h0001.png")]


def test_multilabel_probabilities_are_sigmoids_and_gradcam_covers_other_heads(shared_data, tmp_path):
    chexnet = save_tiny(CheXNetConfig(growth_rate=4, block_config=[1, 2], num_init_features=8, bn_size=2),
                        tmp_path / "chexnet14")
    image = shared_data / "chest-xray-samples/tb0005.png"
    predict_paths(chexnet, [image], tmp_path / "cx", progress=False)
    with open(tmp_path / "cx/predictions.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    probs = np.array([float(v) for k, v in row.items() if k not in ("input", "predicted")])
    assert len(probs) == 14 and ((probs > 0) & (probs < 1)).all() and abs(probs.sum() - 1) > 0.1
    # VGG's ImageNet head is not GAP + linear: the heatmap comes from Grad-CAM.
    vgg = save_tiny(VGGConfig(depth=11, num_labels=2, classifier_hidden=16, in_channels=3), tmp_path / "vgg",
                    RadiographImageProcessor(num_channels=3, size=64))
    report = predict_paths(vgg, [image], tmp_path / "vgg_out", progress=False)
    assert report.ok and (tmp_path / "vgg_out/tb0005_heatmap.png").is_file()


# -- 3D segmentation -----------------------------------------------------------------------------------------
def test_attention_unet_3d_on_a_brats_subject_folder_keeps_the_affine(brats_subject, tmp_path):
    config = AttentionUNetConfig(spatial_dims=3, base_width=2, depth=2, num_labels=3, in_channels=2,
                                 channel_names=["flair", "t1c"], deep_supervision=False)
    model = save_tiny(config, tmp_path / "att")
    assert run_cli(model, brats_subject, "--out", tmp_path / "out", "--roi-size", "16") == 0
    out = nib.load(tmp_path / "out/pat0003_seg.nii.gz")
    reference = nib.load(brats_subject / "Flair_subtrMeanDivStd.nii.gz")
    assert out.shape == reference.shape == (32, 32, 24)
    assert np.array_equal(out.affine, reference.affine)
    assert out.get_data_dtype() == np.uint8
    assert set(np.unique(np.asarray(out.dataobj))) <= {0, 1, 2}


def test_deepmedic_with_comma_joined_channels_and_a_reorienting_processor(brats_subject, tmp_path):
    config = DeepMedicConfig(
        normal_feature_maps=[4, 4, 6], normal_kernel_sizes=[[3, 3, 3]] * 3, normal_residual_layers=[3],
        subsample_factors=[[3, 3, 3]], fc_feature_maps=[8], fc_first_kernel_size=[3, 3, 3],
        fc_residual_layers=[], fc_dropout_rates=[0.0, 0.5], train_segment_size=[11, 11, 11],
        inference_segment_size=[11, 11, 11], num_labels=3)
    flair, t1c = brats_subject / "Flair_subtrMeanDivStd.nii.gz", brats_subject / "T1c_subtrMeanDivStd.nii.gz"
    plain = save_tiny(config, tmp_path / "dm")
    assert run_cli(plain, f"{flair},{t1c}", "--out", tmp_path / "out") == 0
    seg = nib.load(tmp_path / "out/pat0003_seg.nii.gz")
    assert seg.shape == (32, 32, 24) and np.array_equal(seg.affine, nib.load(flair).affine)

    # The BraTS files are LPS: a processor turning them to RAS must have its labels mapped back (flips of x, y).
    model = medhub.MedModel.from_pretrained(save_tiny(
        config, tmp_path / "dm_ras", VolumeImageProcessor(channel_names=["flair", "t1c"], orientation="RAS")))
    labels, affine = segment_subject(model, [flair, t1c])
    assert np.array_equal(affine, nib.load(flair).affine)
    # now by hand: flip the files to RAS, predict them as they are, flip back
    model.image_processor = VolumeImageProcessor(channel_names=["flair", "t1c"], orientation=None)
    ras = tmp_path / "ras"
    ras.mkdir()
    for path in (flair, t1c):
        nib.save(nib.as_closest_canonical(nib.load(path)), ras / path.name)
    by_hand, _ = segment_subject(model, [ras / flair.name, ras / t1c.name])
    assert nib.aff2axcodes(nib.load(flair).affine) == ("L", "P", "S")
    assert np.array_equal(labels, by_hand[::-1, ::-1])
    assert not np.array_equal(labels, by_hand)


def test_wrong_channel_count_names_the_expected_channels(shared_data, brats_subject, tmp_path):
    config = AttentionUNetConfig(spatial_dims=3, base_width=2, depth=2, num_labels=2, in_channels=2,
                                 channel_names=["flair", "t1c"], deep_supervision=False)
    model = medhub.MedModel.from_config(config)
    flair = brats_subject / "Flair_subtrMeanDivStd.nii.gz"
    with pytest.raises(InputError, match=r"expects 2 channel\(s\) \['flair', 't1c'\]"):
        segment_subject(model, [flair])
    report = predict_paths(model, [flair], tmp_path / "out", progress=False)
    assert "['flair', 't1c']" in report.failed[0][1]
    # A 2D model with 2 channels cannot read a greyscale image either.
    model2d = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", in_channels=2,
                                                     channel_names=["a", "b"]))
    with pytest.raises(InputError, match=r"\['a', 'b'\]"):
        medhub.predict.segment_image(model2d, shared_data / "isbi2012-em/train/image/0.png")
