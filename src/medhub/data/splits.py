"""Patient-level splitting and a leakage check: no patient's images in two splits.

CheXNet's lesson: ChestX-ray14 holds several images per patient (follow-ups), and an image-wise random split
puts the same patient in train and test, inflating the test scores. `patient_split` assigns whole patients to
splits; `check_leakage` verifies any given splits (yours, a paper's, a Hub dataset's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, IterableDataset

from ..errors import InputError, MedhubError

DEFAULT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


class LeakageError(MedhubError, ValueError):
    """The same patient appears in more than one split (the report names them)."""


def _patient_ids(data: Dataset | IterableDataset | Iterable[Any], column: str | None) -> list[Any]:
    if isinstance(data, (Dataset, IterableDataset)):
        if column is None:
            raise InputError("patient_split/check_leakage: a dataset needs patient_column (e.g. 'patient_id')")
        if column not in (data.column_names or []):
            raise InputError(f"no column {column!r} holds patient ids; the dataset has {data.column_names}")
        if isinstance(data, Dataset):
            return list(data[column])
        return [example[column] for example in data.select_columns([column])]
    return list(data)


def patient_split(dataset_or_ids: Dataset | Iterable[Any], patient_column: str | None = None,
                  fractions: Mapping[str, float] | None = None, seed: int = 0) -> DatasetDict | dict[str, list[int]]:
    """Split rows so that every patient's rows land in exactly one split.

    Patients are shuffled with `seed` and laid end to end, each weighted by its number of rows; a patient goes
    to the split whose fraction of the rows covers its middle, so splits hold about `fractions` of the *rows*.
    Within a split rows keep their original order. Returns a DatasetDict for a Dataset, else
    {split: sorted row indices} for a sequence of patient ids. A split left without patients is an error.
    """
    fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    values = np.array(list(fractions.values()), dtype=float)
    if not fractions or (values < 0).any() or not np.isclose(values.sum(), 1.0):
        raise InputError(f"patient_split: fractions {fractions} must be non-negative and sum to 1")
    ids = _patient_ids(dataset_or_ids, patient_column)
    if not ids:
        raise InputError("patient_split: no rows to split")
    counts = Counter(ids)
    patients = list(counts)  # first-seen order, then a seeded shuffle: reproducible for a given input order
    order = np.random.default_rng(seed).permutation(len(patients))
    sizes = np.array([counts[patients[i]] for i in order], dtype=float)
    middles = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
    bounds = np.cumsum(values)
    which = np.minimum(np.searchsorted(bounds, middles, side="right"), len(values) - 1)
    split_of = {patients[i]: int(w) for i, w in zip(order, which)}
    names = list(fractions)
    indices = {name: [] for name in names}
    for row, patient in enumerate(ids):
        indices[names[split_of[patient]]].append(row)
    empty = [name for name in names if fractions[name] > 0 and not indices[name]]
    if empty:
        raise InputError(f"patient_split: split(s) {empty} got no patients ({len(patients)} patient(s) for "
                         f"fractions {fractions}); use fewer splits or larger fractions")
    if isinstance(dataset_or_ids, Dataset):
        return DatasetDict({name: dataset_or_ids.select(rows) for name, rows in indices.items()})
    return indices


@dataclass
class LeakageReport:
    """Patients per split, rows per split, and the patients found in more than one split."""

    patient_column: str
    rows: dict[str, int]
    patients: dict[str, int]
    shared: dict[Any, list[str]] = field(default_factory=dict)

    @property
    def leaked(self) -> bool:
        return bool(self.shared)

    def summary(self) -> str:
        counts = ", ".join(f"{s}: {self.rows[s]} rows / {self.patients[s]} patients" for s in self.rows)
        if not self.leaked:
            return f"no patient ({self.patient_column}) in more than one split ({counts})"
        examples = "; ".join(f"{p} in {s}" for p, s in list(self.shared.items())[:10])
        return f"{len(self.shared)} patient(s) ({self.patient_column}) in more than one split: {examples} ({counts})"

    def raise_if_leaked(self) -> None:
        if self.leaked:
            raise LeakageError(self.summary())


def check_leakage(splits: Mapping[str, Dataset | IterableDataset | Iterable[Any]], patient_column: str,
                  raise_on_leak: bool = False) -> LeakageReport:
    """Report the patients found in more than one of `splits` (raise LeakageError if `raise_on_leak`)."""
    seen: dict[Any, list[str]] = {}
    rows, patients = {}, {}
    for name, data in splits.items():
        ids = _patient_ids(data, patient_column)
        rows[name], unique = len(ids), set(ids)
        patients[name] = len(unique)
        for patient in unique:
            seen.setdefault(patient, []).append(name)
    report = LeakageReport(patient_column, rows, patients, {p: s for p, s in seen.items() if len(s) > 1})
    if raise_on_leak:
        report.raise_if_leaked()
    return report


__all__ = ["LeakageError", "LeakageReport", "check_leakage", "patient_split"]
