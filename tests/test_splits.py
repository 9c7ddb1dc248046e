"""Patient-level splitting and the leakage check, on ChestX-ray14-style ids (synthetic copy) and BraTS subjects."""

from __future__ import annotations

import numpy as np
import pytest
from chestxray14_synthetic import CXR_ROWS, write_chestxray14

from medhub.data import LeakageError, check_leakage, load, patient_split
from medhub.errors import InputError

# 300 patients with 1 to 6 images each, ids in a ChestX-ray14-like order (a patient's follow-ups together).
RNG = np.random.default_rng(7)
IDS = [patient for patient in range(1, 301) for _ in range(int(RNG.integers(1, 7)))]


def test_no_patient_in_two_splits_and_fractions_respected():
    parts = patient_split(IDS, fractions={"train": 0.7, "validation": 0.1, "test": 0.2}, seed=1)
    assert sorted(i for rows in parts.values() for i in rows) == list(range(len(IDS)))  # every row, once
    patients = {name: {IDS[i] for i in rows} for name, rows in parts.items()}
    assert not (patients["train"] & patients["validation"] or patients["train"] & patients["test"]
                or patients["validation"] & patients["test"])
    for name, fraction in {"train": 0.7, "validation": 0.1, "test": 0.2}.items():
        assert abs(len(parts[name]) / len(IDS) - fraction) < 0.02
        assert parts[name] == sorted(parts[name])  # original order kept
    assert patient_split(IDS, seed=1, fractions={"train": 0.7, "validation": 0.1, "test": 0.2}) == parts
    assert patient_split(IDS, seed=2, fractions={"train": 0.7, "validation": 0.1, "test": 0.2}) != parts


def test_image_wise_split_leaks_and_is_reported():
    order = np.random.default_rng(0).permutation(len(IDS))
    cut = int(0.8 * len(IDS))
    image_wise = {"train": [IDS[i] for i in order[:cut]], "test": [IDS[i] for i in order[cut:]]}
    report = check_leakage(image_wise, "patient_id")
    assert report.leaked and report.rows == {"train": cut, "test": len(IDS) - cut}
    assert all(splits == ["train", "test"] for splits in report.shared.values())
    assert len(report.shared) == len(set(image_wise["train"]) & set(image_wise["test"])) > 10
    with pytest.raises(LeakageError, match=r"patient\(s\) \(patient_id\) in more than one split"):
        check_leakage(image_wise, "patient_id", raise_on_leak=True)


def test_chestxray14_dataset_split_by_patient(tmp_path, shared_data):
    rows = CXR_ROWS + [(f"0000{p}_00{k}.png", "No Finding", k, p) for p in range(4, 10) for k in range(2)]
    root = write_chestxray14(tmp_path / "cxr", shared_data, rows=rows, test_images=set())
    everything = load("chestxray14", split="train", data_dir=root)
    assert len(everything) == 17
    parts = patient_split(everything, "patient_id", fractions={"train": 0.6, "validation": 0.2, "test": 0.2}, seed=0)
    assert sum(len(d) for d in parts.values()) == 17
    report = check_leakage(parts, "patient_id")
    assert not report.leaked and sum(report.patients.values()) == 10
    assert parts["train"]["image_index"] == sorted(parts["train"]["image_index"], key=everything["image_index"].index)
    mixed = {"a": everything.select(range(0, 10)), "b": everything.select(range(10, 17))}  # cuts patient 6
    assert check_leakage(mixed, "patient_id").shared == {6: ["a", "b"]}


def test_brats_subjects_split(shared_data):
    brats = load("brats2015-examples", split="train", data_dir=shared_data)
    parts = patient_split(brats, "subject_id", fractions={"train": 0.75, "validation": 0.25}, seed=0)
    assert len(parts["train"]) == 3 and len(parts["validation"]) == 1
    assert not check_leakage(parts, "subject_id").leaked
    streamed = {name: load("brats2015-examples", split="train", streaming=True, data_dir=shared_data)
                for name in ("a", "b")}
    report = check_leakage(streamed, "subject_id")  # IterableDatasets are read column-wise
    assert report.leaked and len(report.shared) == 4 and report.patients == {"a": 4, "b": 4}


def test_bad_fractions_and_too_few_patients():
    with pytest.raises(InputError, match="sum to 1"):
        patient_split(IDS, fractions={"train": 0.8, "test": 0.3})
    with pytest.raises(InputError, match=r"split\(s\) \['test'\] got no patients"):
        patient_split([1, 1, 2], fractions={"train": 0.5, "validation": 0.45, "test": 0.05})
    with pytest.raises(InputError, match="needs patient_column"):
        patient_split(load_like_dataset())


def load_like_dataset():
    import datasets

    return datasets.Dataset.from_dict({"patient_id": [1, 2]})
