"""medhub.data.load on the real shared data, on local layouts written in tmp_path, and on the Hub path."""

from __future__ import annotations

import shutil
from collections import Counter

import datasets
import huggingface_hub.constants
import nibabel as nib
import numpy as np
import pytest
import torch
from chestxray14_synthetic import write_chestxray14
from dicom_factory import write_dicom
from PIL import Image

from medhub.data import CHESTXRAY14_LABELS, check_leakage, load
from medhub.errors import HubError, InputError
from medhub.io import DicomImage, Volume


def pixels(image) -> np.ndarray:
    return np.asarray(image)


# --- named datasets on the real data -------------------------------------------------------------------------

def test_pneumoniamnist_counts_and_balance(shared_data):
    splits = load("pneumoniamnist", data_dir=shared_data)
    assert {name: len(ds) for name, ds in splits.items()} == {"train": 3882, "validation": 524}
    train = splits["train"]
    assert train.features["label"].names == ["normal", "pneumonia"]
    labels = np.array(train["label"])
    assert labels.sum() == 3494 and abs(labels.mean() - 0.90) < 0.01  # 90 % pneumonia
    image = pixels(train[0]["image"])
    assert image.shape == (28, 28) and image.dtype == np.uint8


def test_streaming_equals_map_style(shared_data):
    mapped = load("pneumoniamnist", split="validation", data_dir=shared_data)
    streamed = load("pneumoniamnist", split="validation", streaming=True, data_dir=shared_data)
    assert isinstance(streamed, datasets.IterableDataset)
    streamed_rows = list(streamed)
    assert len(streamed_rows) == len(mapped) == 524
    for a, b in zip(mapped, streamed_rows):
        assert a["id"] == b["id"] and a["label"] == b["label"]
        np.testing.assert_array_equal(pixels(a["image"]), pixels(b["image"]))


def test_streaming_shuffle_with_two_dataloader_workers(shared_data):
    stream = load("pneumoniamnist", split="train", streaming=True, num_shards=8, data_dir=shared_data)
    shuffled = stream.shuffle(buffer_size=256, seed=0).with_format("torch")
    loader = torch.utils.data.DataLoader(shuffled, batch_size=128, num_workers=2)
    orders = []
    for epoch in range(2):
        shuffled.set_epoch(epoch)
        ids = []
        for batch in loader:
            assert batch["image"].shape[1:] == (1, 28, 28)  # torch format: channels first
            ids.extend(batch["id"])
        counts = Counter(ids)
        assert len(ids) == 3882 and len(counts) == 3882 and max(counts.values()) == 1  # each example once
        orders.append(ids)
    assert orders[0] != orders[1] and orders[0] != sorted(orders[0])  # shuffled, differently per epoch


def test_isbi2012_slices_and_validation_hold_out(shared_data):
    train = load("isbi2012", split="train", data_dir=shared_data)
    assert len(train) == 20 and train["id"][:12] == [str(i) for i in range(12)]  # numeric order: 2 before 10
    for example in train:
        image, mask = pixels(example["image"]), pixels(example["mask"])
        assert image.shape == mask.shape == (512, 512)
        assert set(np.unique(mask).tolist()) == {0, 255}
    held = load("isbi2012", data_dir=shared_data, val_slices=4)
    assert held["train"]["id"] == [str(i) for i in range(16)]
    assert held["validation"]["id"] == ["16", "17", "18", "19"]
    streamed = list(load("isbi2012", split="validation", streaming=True, data_dir=shared_data, val_slices=4))
    assert [e["id"] for e in streamed] == ["16", "17", "18", "19"]
    np.testing.assert_array_equal(pixels(streamed[0]["mask"]), pixels(held["validation"][0]["mask"]))


def test_brats_subjects(shared_data):
    brats = load("brats2015-examples", split="train", data_dir=shared_data)
    assert brats["subject_id"] == [f"brats_2013_pat000{i}_1" for i in (3, 4, 5, 6)]
    assert isinstance(brats.features["flair"], datasets.Nifti)
    first = brats[0]
    for column in ("flair", "t1c", "label", "brainmask"):
        assert first[column].shape == (240, 240, 155)
    labels = np.asarray(first["label"].dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3, 4} and (labels > 0).any()
    streamed = list(load("brats2015-examples", split="train", streaming=True, data_dir=shared_data))
    assert [e["subject_id"] for e in streamed] == brats["subject_id"]


def test_unknown_split_is_named(shared_data):
    with pytest.raises(InputError, match="no split 'test'.*'train', 'validation'"):
        load("pneumoniamnist", split="test", data_dir=shared_data)


# --- NIfTI subject folders: geometry checks ----------------------------------------------------------------------

def write_subject(folder, label_shape=(8, 8, 4), label_affine=None):
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((8, 8, 4), np.float32), np.eye(4)), folder / "t1.nii.gz")
    label = np.zeros(label_shape, np.uint8)
    nib.save(nib.Nifti1Image(label, np.eye(4) if label_affine is None else label_affine), folder / "seg.nii.gz")


def test_nifti_subjects_folder_and_disagreeing_label(tmp_path):
    write_subject(tmp_path / "sub01")
    write_subject(tmp_path / "sub02")
    dataset = load(tmp_path, split="train")
    assert dataset.column_names == ["subject_id", "seg", "t1"] and dataset["subject_id"] == ["sub01", "sub02"]
    assert dataset[1]["seg"].shape == (8, 8, 4)

    write_subject(tmp_path / "sub03", label_shape=(8, 8, 5))
    with pytest.raises(InputError, match=r"sub03/t1.nii.gz: shape \(8, 8, 4\) disagrees with seg.nii.gz"):
        load(tmp_path)
    shifted = np.eye(4)
    shifted[0, 3] = 2.0
    write_subject(tmp_path / "sub04", label_affine=shifted)
    lenient = load(tmp_path, split="train", lenient=True)
    assert lenient["subject_id"] == ["sub01", "sub02"]
    description = lenient.info.description
    assert "skipped 2 example(s)" in description and "sub04/t1.nii.gz: affine disagrees" in description


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: the folder is empty"):
        load(tmp_path)


# --- 2-D folders: classes, image/mask pairs ---------------------------------------------------------------------

def write_png(path, value, size=(16, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, np.uint8)).save(path)


def test_class_folders(tmp_path):
    for name, value in [("normal/a.png", 10), ("normal/b.png", 20), ("pneumonia/c.png", 30)]:
        write_png(tmp_path / name, value)
    dataset = load(tmp_path, split="train")
    assert dataset.features["label"].names == ["normal", "pneumonia"]
    assert dataset["label"] == [0, 0, 1]
    assert [int(pixels(e["image"])[0, 0]) for e in dataset] == [10, 20, 30]


def test_image_mask_pairs(tmp_path):
    for stem in ("s1", "s2"):
        write_png(tmp_path / "images" / f"{stem}.png", 100)
        write_png(tmp_path / "masks" / f"{stem}.png", 255)
    pairs = load(tmp_path, split="train")
    assert pairs["id"] == ["s1", "s2"] and pixels(pairs[0]["mask"]).max() == 255
    write_png(tmp_path / "images" / "s3.png", 100)
    with pytest.raises(InputError, match=r"images/s3.png: no mask named s3"):
        load(tmp_path)
    write_png(tmp_path / "masks" / "s3.png", 255, size=(8, 8))
    with pytest.raises(InputError, match=r"masks/s3.png: mask size \(8, 8\) disagrees"):
        load(tmp_path)
    assert "skipped 1 example(s)" in load(tmp_path, split="train", lenient=True).info.description


def test_corrupt_files_are_medhub_errors_and_lenient_skips_them(tmp_path):
    """A corrupt mask (pairs), a truncated class image and a corrupt NIfTI (subjects): InputError naming the file,
    never a PIL/nibabel error; lenient=True skips and counts them."""
    pairs, classes, subjects = tmp_path / "pairs", tmp_path / "classes", tmp_path / "subjects"
    for stem in ("s1", "s2"):
        write_png(pairs / "images" / f"{stem}.png", 100)
        write_png(pairs / "masks" / f"{stem}.png", 255)
    (pairs / "masks" / "s2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # corrupt: no IHDR
    write_png(classes / "normal" / "a.png", 10)
    write_png(classes / "normal" / "b.png", 20)
    good = (classes / "normal" / "b.png").read_bytes()
    (classes / "normal" / "b.png").write_bytes(good[:len(good) // 2])  # truncated: the header still opens
    write_subject(subjects / "sub01")
    write_subject(subjects / "sub02")
    (subjects / "sub02" / "t1.nii.gz").write_bytes(b"\x1f\x8b" + b"not a gzip stream")
    for root, bad in [(pairs, "masks/s2.png"), (classes, "normal/b.png"), (subjects, "sub02/t1.nii.gz")]:
        with pytest.raises(InputError, match=f"{bad}: not a readable"):
            load(root, split="train")
        lenient = load(root, split="train", lenient=True)
        assert len(lenient) == 1 and f"{bad}: not a readable" in lenient.info.description


# --- DICOM -------------------------------------------------------------------------------------------------------

def test_dicom_files_decoded_lazily(tmp_path, shared_data):
    for name in ("1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm", "Fake_MONOHR1.dcm"):
        shutil.copy(shared_data / "chest-xray-samples" / name, tmp_path / name)
    raw = load(tmp_path, split="train", decode=False)
    assert raw[0]["dicom"]["path"].endswith(".850819.dcm") and raw[0]["dicom"]["bytes"] is None
    dataset = load(tmp_path, split="train")
    images = [e["dicom"] for e in dataset]
    assert all(isinstance(image, DicomImage) for image in images)
    assert [image.photometric_interpretation for image in images] == ["MONOCHROME2", "MONOCHROME1"]
    assert images[0].pixels.shape == images[1].pixels.shape and images[0].pixels.ndim == 2
    streamed = next(iter(load(tmp_path, split="train", streaming=True)))
    np.testing.assert_array_equal(streamed["dicom"].pixels, images[0].pixels)


def test_dicom_series_folders(tmp_path):
    for series, offset in (("ct_a", 0), ("ct_b", 100)):
        (tmp_path / series).mkdir()
        for k in range(3):
            write_dicom(tmp_path / series / f"{k}.dcm", np.full((6, 5), offset + k, np.int16),
                        position=(0.0, 0.0, 2.0 * k), instance=k + 1, series_uid=f"1.2.3.{offset + 1}")
    dataset = load(tmp_path, split="train")
    assert dataset["id"] == ["ct_a", "ct_b"]
    volume = dataset[1]["series"]
    assert isinstance(volume, Volume) and volume.shape == (5, 6, 3)
    assert volume.array[0, 0].tolist() == [100, 101, 102]
    (tmp_path / "ct_c").mkdir()
    (tmp_path / "ct_c" / "0.dcm").write_bytes(b"not dicom")
    with pytest.raises(InputError, match=r"ct_c/0.dcm: not a DICOM file"):
        load(tmp_path)


# --- ChestX-ray14 (a synthetic copy with the real CSV layout and two real PNGs) -----------------------------------

@pytest.fixture
def chestxray14(tmp_path, shared_data):
    return write_chestxray14(tmp_path / "chestxray14", shared_data)


def test_chestxray14_labels_and_official_splits(chestxray14):
    splits = load("chestxray14", data_dir=chestxray14)
    train, test = splits["train"], splits["test"]
    assert train["image_index"] == ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000003_000.png"]
    assert CHESTXRAY14_LABELS[1] == "Cardiomegaly" and CHESTXRAY14_LABELS[-1] == "Hernia"
    assert train[1]["labels"] == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]  # Cardiomegaly|Emphysema
    assert train[2]["labels"] == [0] * 14  # No Finding
    assert test[0]["labels"] == [0, 0, 1] + [0] * 10 + [1]  # Effusion|Hernia
    assert test[0]["patient_id"] == 27426 and test[0]["original_width"] == 2682
    assert pytest.approx(test[0]["pixel_spacing_y"], rel=1e-6) == 0.143
    original = Image.open(chestxray14 / "images_001/images/00027426_000.png")
    assert pixels(test[0]["image"]).shape == pixels(original).shape
    assert not check_leakage(splits, "patient_id").leaked


def test_chestxray14_missing_image(chestxray14):
    (chestxray14 / "images_001" / "images" / "00000002_000.png").unlink()
    with pytest.raises(InputError, match=r"line 4 \(00000002_000.png\): image file 00000002_000.png not found"):
        load("chestxray14", split="train", data_dir=chestxray14)
    lenient = load("chestxray14", split="train", data_dir=chestxray14, lenient=True)
    assert len(lenient) == 3 and "skipped 1 example(s)" in lenient.info.description
    assert "00000002_000.png" in lenient.info.description


def test_chestxray14_patient_wise_validation(chestxray14):
    splits = load("chestxray14", data_dir=chestxray14, val_fraction=0.5, seed=0)
    assert splits["train"]["patient_id"] == [3] and splits["validation"]["patient_id"] == [1, 1, 2]  # CSV order kept
    assert splits["test"]["patient_id"] == [27426]
    report = check_leakage(splits, "patient_id")
    assert not report.leaked and report.patients["train"] + report.patients["validation"] == 3


# --- Hub repos and datasets' own local formats through the same code path -----------------------------------------

def test_unreachable_hub_repo_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match="medhub-nonexistent/no-such-dataset: .*could not be reached"):
        load("medhub-nonexistent/no-such-dataset", split="train")


def test_local_parquet_and_imagefolder_go_through_datasets(tmp_path):
    table = datasets.Dataset.from_dict({"patient_id": [1, 1, 2], "x": [0.5, 1.5, 2.5]})
    (tmp_path / "parquet").mkdir()
    table.to_parquet(str(tmp_path / "parquet" / "train-00000.parquet"))
    loaded = load(tmp_path / "parquet", split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded["x"] == [0.5, 1.5, 2.5]
    streamed = list(load(tmp_path / "parquet", split="train", streaming=True, cache_dir=str(tmp_path / "cache")))
    assert [e["patient_id"] for e in streamed] == [1, 1, 2]

    folder = tmp_path / "imagefolder"
    write_png(folder / "a.png", 7)
    write_png(folder / "b.png", 9)
    (folder / "metadata.csv").write_text("file_name,patient_id\na.png,1\nb.png,2\n")
    images = load(folder, split="train", cache_dir=str(tmp_path / "cache"))
    assert isinstance(images.features["image"], datasets.Image) and images["patient_id"] == [1, 2]
    assert int(pixels(images[1]["image"])[0, 0]) == 9


def test_lenient_dicom_series_skips_and_counts(tmp_path):
    (tmp_path / "ct_a").mkdir()
    for k in range(2):
        write_dicom(tmp_path / "ct_a" / f"{k}.dcm", np.full((4, 4), k, np.int16), position=(0.0, 0.0, float(k)),
                    instance=k + 1, series_uid="1.2.3.9")
    (tmp_path / "ct_b").mkdir()
    (tmp_path / "ct_b" / "0.dcm").write_bytes(b"not dicom")
    dataset = load(tmp_path, split="train", lenient=True)
    assert dataset["id"] == ["ct_a"]
    assert "skipped 1 example(s)" in dataset.info.description and "ct_b/0.dcm" in dataset.info.description
