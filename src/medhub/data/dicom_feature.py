"""A lazily decoded DICOM column: what `datasets` lacks next to its own `Image` and `Nifti` features.

`datasets` has no DICOM feature, so a DICOM column is stored the way `Image` stores its files, as a struct
`{"path": string, "bytes": binary}` (`DICOM_STRUCT`), and decoded *on access* with medhub's own readers:

- a file (or bytes)  -> `medhub.io.read_dicom`        -> `DicomImage` (float32 pixels after the Modality LUT,
  photometric interpretation, window, pixel spacing, the pydicom Dataset);
- a folder (a series) -> `medhub.io.read_dicom_series` -> `Volume` (X, Y, Z array with its RAS+ affine).

`decode_dicom_columns(dataset, columns)` installs that decoding: `Dataset.with_transform` for map-style
datasets, a lazy `IterableDataset.map` for streaming ones. Nothing is read until an example is accessed, and
a file that cannot be decoded raises medhub's InputError naming it. Use `decode=False` in `medhub.data.load`
to keep the raw `{"path", "bytes"}` values (e.g. to hand them to another reader).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset, IterableDataset, Value

from ..errors import InputError
from ..io import DicomImage, Volume, read_dicom, read_dicom_series

DICOM_STRUCT = {"path": Value("string"), "bytes": Value("binary")}


def dicom_value(path: str | Path) -> dict[str, Any]:
    """The stored value of a DICOM file or series folder: its absolute path, no bytes (read on access)."""
    return {"path": str(Path(path).resolve()), "bytes": None}


def decode_dicom(value: dict[str, Any] | None) -> DicomImage | Volume | None:
    """Decode one stored DICOM value: a folder is a series (Volume), a file or bytes one image (DicomImage)."""
    if value is None:
        return None
    path, data = value.get("path"), value.get("bytes")
    if data is not None:  # medhub's reader takes paths: spill the bytes to a temporary file
        handle, tmp = tempfile.mkstemp(suffix=".dcm")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            image = read_dicom(tmp)
            image.source = path or "<DICOM bytes>"
            return image
        finally:
            os.unlink(tmp)
    if path is None:
        raise InputError(f"DICOM value {value!r}: neither 'path' nor 'bytes' is set")
    return read_dicom_series(path) if Path(path).is_dir() else read_dicom(path)


def decode_dicom_columns(dataset: Dataset | IterableDataset, columns: list[str]) -> Dataset | IterableDataset:
    """`dataset` with `columns` decoded on access (see the module docstring); other columns unchanged."""
    missing = [c for c in columns if c not in (dataset.column_names or [])]
    if missing:
        raise InputError(f"decode_dicom_columns: no column(s) {missing}; the dataset has {dataset.column_names}")

    if isinstance(dataset, IterableDataset):
        return dataset.map(lambda example: {c: decode_dicom(example[c]) for c in columns})

    def transform(batch: dict[str, list]) -> dict[str, list]:
        batch = dict(batch)
        for c in columns:
            batch[c] = [decode_dicom(v) for v in batch[c]]
        return batch

    return dataset.with_transform(transform)


__all__ = ["DICOM_STRUCT", "decode_dicom", "decode_dicom_columns", "dicom_value"]
