"""The named real datasets medhub's models were published on, read from their usual local layouts.

Each loader takes the dataset's folder (found by `dataset_folder`: the `data_dir` argument, or its
sub-folder of that name, or medhub.shared_data.data_dir()) and returns `{split name: builder}` for
`_table.pick_split`.

- "pneumoniamnist": `pneumoniamnist/pneumoniamnist_trainval.npz`; train (npz "train") and validation
  (npz "val"); id, image (28x28 uint8, `Image`), label (`ClassLabel` normal=0 / pneumonia=1).
- "isbi2012": `isbi2012-em/train/{image,label}/N.png`, N = 0..19 in numeric order; id, image, mask
  (255 = cell interior, 0 = membrane). `val_slices=k` holds out the last k slices as "validation".
- "brats2015-examples": one folder per subject; subject_id, flair, t1c, label (OTMultiClass), brainmask as
  `datasets.Nifti` (lazily decoded nibabel images); one "train" split.
- "dsb2018-nuclei": `dsb2018-nuclei/{images,labels}/<id>.png`; train / validation split by experiment group;
  id, image (RGB), label (16-bit instance labels), image_type, group, height, width[, mask]: see `dsb2018.py`.
- "chestxray14": NIH ChestX-ray14 (Data_Entry_2017.csv, images*/ folders, train_val_list.txt and
  test_list.txt): see `chestxray14.py`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Features, Image, Sequence, Value

from ..errors import InputError
from ..io import read_medmnist
from ..shared_data import data_dir as shared_data_dir
from ._table import SkipReport, as_streaming, to_dataset
from .chestxray14 import chestxray14_splits
from .dsb2018 import dsb2018_nuclei
from .folders import entries, load_nifti_subjects, load_pairs

FOLDERS = {
    "pneumoniamnist": "pneumoniamnist",
    "isbi2012": "isbi2012-em",
    "brats2015-examples": "brats2015-examples",
    "chestxray14": "chestxray14",
    "dsb2018-nuclei": "dsb2018-nuclei",
}
BRATS_FILES = {"flair": "Flair_subtrMeanDivStd", "t1c": "T1c_subtrMeanDivStd", "label": "OTMultiClass",
               "brainmask": "brainmask"}


def dataset_folder(name: str, data_dir: str | Path | None) -> Path:
    """data_dir/<folder> if it exists, else data_dir itself; without data_dir the shared data folder's."""
    sub = FOLDERS[name]
    if data_dir is None:
        base = shared_data_dir()
        if base is None:
            raise InputError(f"dataset {name!r}: no data_dir given and medhub's data folder was not found "
                             "(set MEDHUB_DATA_DIR or pass data_dir=)")
        data_dir = base
    data_dir = Path(data_dir)
    folder = data_dir / sub if (data_dir / sub).is_dir() else data_dir
    if not folder.is_dir():
        raise InputError(f"dataset {name!r}: {folder} is not a folder")
    return folder


def pneumoniamnist(folder: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None):
    path = folder / "pneumoniamnist_trainval.npz"
    return medmnist_file(path, streaming=streaming, lenient=lenient, num_shards=num_shards,
                         label_names=["normal", "pneumonia"], what="PneumoniaMNIST (MedMNIST v2), 28x28 chest X-rays")


def medmnist_file(path: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None,
                  label_names: list[str] | None = None, what: str | None = None):
    """Any `.npz` in the MedMNIST v2 layout (`{train,val,test}_images` / `_labels`): the splits it holds as
    train / validation / test; id, image (`Image`), label (`ClassLabel` when `label_names` are given, else the
    class index; a list of 0/1 values for multi-label files)."""
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
    present = {name: key for name, key in (("train", "train"), ("validation", "val"), ("test", "test"))
               if {f"{key}_images", f"{key}_labels"} <= keys}
    if not present:
        raise InputError(f"{path}: no MedMNIST split in it (keys {sorted(keys)}); expected train_images/"
                         "train_labels, val_images/val_labels or test_images/test_labels")

    def build(split: str, key: str):
        images, labels = read_medmnist(path, key)
        multi = labels.ndim == 2 and labels.shape[1] > 1
        rows = [{"id": f"{split}-{i:05d}", "image": image, "label": [int(v) for v in label] if multi else int(label[0])}
                for i, (image, label) in enumerate(zip(images, labels))]
        label = (Sequence(Value("int64")) if multi else ClassLabel(names=label_names) if label_names
                 else Value("int64"))
        features = Features({"id": Value("string"), "image": Image(), "label": label})
        return to_dataset(rows, features, split=split, streaming=streaming, report=SkipReport(str(path), lenient),
                          what=f"{what or path.name} {split}", num_shards=num_shards)

    return {name: partial(build, name, key) for name, key in present.items()}


def isbi2012(folder: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None, val_slices: int = 0):
    train = folder / "train"
    if not (train / "image").is_dir():
        raise InputError(f"{train}: expected image/ and label/ folders of the ISBI 2012 training slices")
    count = len(entries(train / "image")[1])
    if not 0 <= val_slices < count:
        raise InputError(f"isbi2012: val_slices={val_slices}; expected 0 <= val_slices < {count} slices")

    def build(split: str):
        dataset = load_pairs(train, split=split, streaming=False, lenient=lenient, images="image", masks="label")
        cut = len(dataset) - val_slices
        dataset = dataset.select(range(cut) if split == "train" else range(cut, len(dataset)))
        return as_streaming(dataset, num_shards) if streaming else dataset

    builders = {"train": partial(build, "train")}
    if val_slices:
        builders["validation"] = partial(build, "validation")
    return builders


def brats2015_examples(folder: Path, *, streaming: bool, lenient: bool, num_shards: int | None = None):
    build = partial(load_nifti_subjects, folder, split="train", streaming=streaming, lenient=lenient,
                    num_shards=num_shards, files=BRATS_FILES,
                    what="BraTS 2015 subjects as redistributed with DeepMedic (1 mm, z-scored)")
    return {"train": build}


NAMED_DATASETS = {
    "pneumoniamnist": pneumoniamnist,
    "isbi2012": isbi2012,
    "brats2015-examples": brats2015_examples,
    "chestxray14": chestxray14_splits,
    "dsb2018-nuclei": dsb2018_nuclei,
}

__all__ = ["BRATS_FILES", "NAMED_DATASETS", "dataset_folder"]
