"""A recipe's `data:` section as dataset rows: the one reader that training (`medhub.training.data`,
`patches3d`) and evaluation (`medhub.evaluation`) share.

- `load_rows(data, split)`: the split of `medhub.data.load(name or path, split, **options)`, limited as the
  recipe says (`limit_train` / `limit_eval`, after a seeded shuffle unless `shuffle_before_limit: false`);
- `subject_rows(data, split)`: 3D subjects of a split: the recipe's subject lists (`data.patches.subjects`,
  default the original DeepMedic's BraTS split) over the dataset's one table of subjects, else the split's rows;
- `subject_volumes(row, subject, columns)`: NIfTI columns of a row as `medhub.io.Volume`s;
- `map_label_values(labels, mapping)`: label values to class indices (e.g. ISBI 2012's {255: 1}).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from datasets import Dataset

from ..errors import ConfigError, InputError
from ..io import Volume
from ..io.nifti import nifti_to_volume
from .loaders import load

BRATS_SPLITS = {  # the original DeepMedic's example split: train on 5/6, test on 3/4
    "train": ["brats_2013_pat0005_1", "brats_2013_pat0006_1"],
    "validation": ["brats_2013_pat0005_1", "brats_2013_pat0006_1"],
    "test": ["brats_2013_pat0003_1", "brats_2013_pat0004_1"],
}


def load_rows(data: dict[str, Any], split: str, seed: int = 0, train: bool = False) -> Dataset:
    """The raw rows of a split, limited as the recipe says."""
    name = str(data.get("name") or data.get("path"))
    dataset = load(name, split=split, **dict(data.get("options") or {}))
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"recipe data: {name!r} split {split!r} loaded as {type(dataset).__name__}; "
                          "training and evaluation need a map-style datasets.Dataset (not streaming)")
    limit = data.get("limit_train" if train else "limit_eval")
    if limit is not None:
        if data.get("shuffle_before_limit", True):
            dataset = dataset.shuffle(seed=seed)
        dataset = dataset.select(range(min(int(limit), len(dataset))))
    return dataset


def for_evaluation(data: dict[str, Any]) -> dict[str, Any]:
    """The data section as evaluation reads it: the training-only keys dropped (whole images, no augmentation)."""
    return {k: v for k, v in data.items() if k not in ("augment", "weight_map", "limit_train", "crop")}


def subject_split(data: dict[str, Any]) -> dict[str, list[str]] | None:
    """The recipe's subject lists per split (`data.patches.subjects` over BRATS_SPLITS), or None (also for
    `every_subject: true`: a user's own folder of subjects, all evaluated)."""
    if not data.get("patches") or data.get("every_subject"):
        return None
    return {**BRATS_SPLITS, **dict((data.get("patches") or {}).get("subjects") or {})}


def split_subjects(subjects: dict[str, list[str]], split: str) -> list[str]:
    chosen = subjects.get(split)
    if not chosen:
        raise ConfigError(f"data.patches.subjects has no split {split!r}; it has {sorted(subjects)}")
    return list(chosen)


def subject_rows(data: dict[str, Any], split: str, subjects: Sequence[str] | None = None) -> list[dict]:
    """3D subjects of `split` (or the named `subjects`) as dataset rows (see the module docstring)."""
    name = str(data.get("name") or data.get("path"))
    lists = subject_split(data)
    if lists is None and subjects is None:
        rows = list(load_rows(data, split))
        return rows[: data.get("limit_eval") or None]
    wanted = list(subjects) if subjects is not None else split_subjects(lists, split)[: data.get("limit_eval") or None]
    dataset = load(name, split="train", **dict(data.get("options") or {}))
    index = {s: i for i, s in enumerate(dataset["subject_id"])}
    missing = [s for s in wanted if s not in index]
    if missing:
        raise InputError(f"{name}: no subject(s) {missing}; it has {sorted(index)}")
    return [dataset[index[s]] for s in wanted]


def subject_volumes(row: dict, subject: str, columns: Sequence[str]) -> dict[str, Volume]:
    """The named NIfTI columns of a dataset row as `Volume`s."""
    missing = [c for c in columns if c not in row]
    if missing:
        raise InputError(f"subject {subject}: no column(s) {missing}; the dataset has {sorted(row)}")
    return {c: nifti_to_volume(row[c], f"subject {subject} {c}") for c in columns}


def map_label_values(labels: Any, mapping: dict | None) -> np.ndarray:
    """Integer class indices from a label map, with `mapping`'s values replaced (others kept)."""
    array = np.asarray(labels)
    if array.dtype.kind == "f" and not np.all(array == np.round(array)):
        raise InputError("labels are fractional; expected integer class indices")
    array = array.astype(np.int64)
    if not mapping:
        return array
    mapped = array.copy()
    for source, target in mapping.items():
        mapped[array == int(source)] = int(target)
    return mapped


__all__ = ["BRATS_SPLITS", "for_evaluation", "load_rows", "map_label_values", "split_subjects", "subject_rows",
           "subject_split", "subject_volumes"]
