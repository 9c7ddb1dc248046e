"""The dataset card `push_dataset` writes (the dataset repo's README.md), as a `huggingface_hub.DatasetCard`.

Metadata the Hub reads: `license` (with `license_name` / `license_link` for "other"), `task_categories`,
`size_categories` (from the number of rows), `tags` (always `medical`, plus `dicom` when a split holds DICOM),
`pretty_name`, `source_datasets`; the `dataset_info` / `configs` that `datasets.push_to_hub` writes are kept.
Text: the description, provenance, the de-identification applied (whether the push check ran, what it found,
and the profile `medhub.io.deidentify` applies: `profile_statement`), features and splits, and the citation.

What only the uploader knows comes in a `DatasetCardInfo`; without one the card says the licence is unknown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from datasets import ClassLabel, Dataset, Image, LargeList, List, Value
from huggingface_hub import DatasetCard, DatasetCardData

from ..errors import InputError
from ..io.deidentify import profile_statement
from .dicom_values import is_dicom_struct, splits_of

# The Hub's size categories: (upper bound on the number of rows, label)
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


@dataclass(frozen=True)
class DatasetCardInfo:
    """What the uploader states about a dataset, for its card.

    license: a Hub licence id ("cc-by-4.0", "cc-by-nc-sa-3.0", ...; "other" needs license_name and license_link);
    task_categories: Hub task categories ("image-classification", "image-segmentation", ...); source: provenance
    (where the images come from, who acquired them, how they were selected); citation: BibTeX of the source;
    source_datasets: Hub ids of the datasets it derives from; tags: added to `medical`.
    """

    license: str
    task_categories: tuple[str, ...]
    source: str
    citation: str = ""
    pretty_name: str = ""
    description: str = ""
    license_name: str = ""
    license_link: str = ""
    source_datasets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("license", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise InputError(f"DatasetCardInfo.{name}: expected a non-empty string")
        if self.license == "other" and not (self.license_name and self.license_link):
            raise InputError("DatasetCardInfo: license='other' needs license_name and license_link")
        for name in ("task_categories", "source_datasets", "tags"):
            values = getattr(self, name)
            if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
                raise InputError(f"DatasetCardInfo.{name}: expected a list of non-empty strings, got {values!r}")
        if not self.task_categories:
            raise InputError("DatasetCardInfo.task_categories: expected at least one Hub task category")


@dataclass(frozen=True)
class DicomCheck:
    """What the push check saw: whether it ran, how many DICOM files it read, and their DeidentificationMethod."""

    ran: bool
    files: int = 0
    methods: tuple[tuple[str, int], ...] = ()  # (DeidentificationMethod value, number of files)


def size_category(rows: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if rows < bound:
            return label
    return "n>1B"


def describe_feature(feature: Any) -> str:
    """A feature's type in words ("DICOM file", "class label (normal, pneumonia)", "list of float32", ...)."""
    if is_dicom_struct(feature):
        return "DICOM file (`path`, `bytes`)"
    if isinstance(feature, ClassLabel):
        return f"class label ({', '.join(feature.names)})"
    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, Image):
        return "image"
    if isinstance(feature, (List, LargeList)):
        return f"list of {describe_feature(feature.feature)}"
    if isinstance(feature, list) and feature:
        return f"list of {describe_feature(feature[0])}"
    if isinstance(feature, dict):
        return "struct {" + ", ".join(f"{k}: {describe_feature(v)}" for k, v in feature.items()) + "}"
    return type(feature).__name__


def dataset_card(dataset_or_dict, info: DatasetCardInfo | None, check: DicomCheck,
                 hub_metadata: dict[str, Any] | None = None) -> DatasetCard:
    """The card of `dataset_or_dict` (a Dataset or DatasetDict); `hub_metadata`: the metadata already in the repo's
    README (what `datasets.push_to_hub` wrote: `dataset_info`, `configs`), kept."""
    splits = {name or "train": split for name, split in splits_of(dataset_or_dict).items()}
    rows = sum(split.num_rows for split in splits.values())
    has_dicom = any(is_dicom_struct(f) for split in splits.values() for f in split.features.values())
    tags = list(dict.fromkeys(["medical", *(["dicom"] if has_dicom else []), *(info.tags if info else ())]))
    meta = {k: v for k, v in (hub_metadata or {}).items() if k in ("dataset_info", "configs")}
    data = DatasetCardData(license=info.license if info else "unknown", size_categories=[size_category(rows)],
                           task_categories=list(info.task_categories) if info else None, tags=tags,
                           pretty_name=(info.pretty_name or None) if info else None,
                           source_datasets=list(info.source_datasets) or None if info else None, **meta)
    if info and info.license == "other":
        data.license_name, data.license_link = info.license_name, info.license_link
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n" + _body(splits, rows, info, check))


def _body(splits: dict[str, Dataset], rows: int, info: DatasetCardInfo | None, check: DicomCheck) -> str:
    title = (info.pretty_name if info and info.pretty_name else "Dataset")
    first = next(iter(splits.values()))
    features = "\n".join(f"| `{name}` | {describe_feature(feature)} |" for name, feature in first.features.items())
    split_rows = "\n".join(f"| {name} | {split.num_rows:,} |" for name, split in splits.items())
    citation = (f"```bibtex\n{info.citation.strip()}\n```" if info and info.citation else
                "The uploader gave no citation.")
    licence = (f"`{info.license}`" + (f" ({info.license_name}: {info.license_link})" if info.license == "other"
                                      else "") if info else "not stated by the uploader (`unknown`)")
    description = f"\n{info.description}\n" if info and info.description else ""
    return f"""
# {title}
{description}
Pushed with `medhub.data.push_dataset`: {rows:,} rows in {len(splits)} split(s). Licence: {licence}.

## Provenance

{info.source if info else "Not stated by the uploader."}

## De-identification

{_deidentification(check)}

## Features and splits

| feature | type |
|---|---|
{features}

| split | rows |
|---|---|
{split_rows}

## Citation

{citation}
"""


def _deidentification(check: DicomCheck) -> str:
    if not check.ran:
        return ("**Not checked.** The uploader pushed with `allow_identifying_data=True`, which skips medhub's "
                "check: DICOM headers in this dataset may identify patients.")
    if check.files == 0:
        return "No column holds DICOM: there were no DICOM headers to check (images are not inspected for text)."
    methods = "; ".join(f'"{method}" in {n} file(s)' for method, n in check.methods)
    profile = "\n".join(f"- {line}" for line in profile_statement())
    return (f"Before the push, medhub read the header of each of the {check.files} DICOM file(s): each records "
            f"PatientIdentityRemoved = YES (DeidentificationMethod: {methods}), and none holds an attribute the "
            "profile below removes or replaces, nor does any string column hold an original DICOM UID.\n\n"
            "The profile, which `medhub.io.deidentify` applies (to every DICOM value of a dataset: "
            f"`medhub.data.deidentify_dataset`) and the push check verifies:\n\n{profile}")


def method_counts(methods: Counter) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(methods.items()))


__all__ = ["DatasetCardInfo", "DicomCheck", "dataset_card", "describe_feature", "method_counts", "size_category"]
