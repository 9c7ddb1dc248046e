"""Readers for the files medical images come in: DICOM (images and series), NIfTI, PNG/JPEG, MedMNIST.

`read_any(path)` dispatches on the file's *signature* (its first bytes; `formats.sniff`), not on its name, except
for NIfTI whose gzip signature is shared with any .gz file (there the name must end in .nii or .nii.gz):

- "DICM" at byte 128 (DICOM Part 10 preamble) -> `read_dicom` -> `DicomImage`
- a folder -> `read_dicom_series` -> `Volume`
- ".nii"/".nii.gz" (with the NIfTI-1/2 header size 348/540 or a gzip stream) -> `read_nifti` -> `Volume`
- PNG (\\x89PNG) and JPEG (\\xFF\\xD8\\xFF) -> `read_image` -> `RasterImage`

Writers: `write_dicom_series` (a volume or NIfTI as a DICOM MR/CT series, `dicom_write.py`) and
`write_dicom_seg` / `read_dicom_seg` (label volumes as DICOM SEG through highdicom, `dicom_seg.py`).
Every reader checks what a file declares against `medhub.io.limits` (decoded bytes, header bytes) before it
inflates or decodes anything; `declared_size(path)` reports (shape, nbytes, compressed) from headers alone.
"""

from __future__ import annotations

from pathlib import Path

from .declared import DeclaredSize, declared_size
from .deidentify import assert_deidentified, deidentify, find_identifying_attributes
from .dicom import DicomImage, read_dicom
from .dicom_seg import coded_property, read_dicom_seg, write_dicom_seg
from .dicom_series import SeriesLayout, read_dicom_series, read_series_layout
from .dicom_write import write_dicom_series
from .formats import sniff
from .images import RasterImage, read_image
from .medmnist import read_medmnist
from .nifti import read_nifti
from .volume import Volume, reorient, save_nifti, spacing_from_affine, to_canonical


def read_any(path: str | Path) -> DicomImage | Volume | RasterImage:
    """Read a medical image file (or a DICOM series folder) whatever its format; see the module docstring."""
    kind = sniff(path)
    if kind == "dicom":
        return read_dicom(path)
    if kind == "dicom-series":
        return read_dicom_series(path)
    if kind == "nifti":
        return read_nifti(path)
    return read_image(path)


__all__ = [
    "DeclaredSize",
    "DicomImage",
    "assert_deidentified",
    "declared_size",
    "deidentify",
    "find_identifying_attributes",
    "RasterImage",
    "SeriesLayout",
    "Volume",
    "coded_property",
    "read_any",
    "read_dicom",
    "read_dicom_seg",
    "read_dicom_series",
    "read_image",
    "read_medmnist",
    "read_nifti",
    "read_series_layout",
    "reorient",
    "save_nifti",
    "sniff",
    "spacing_from_affine",
    "to_canonical",
    "write_dicom_seg",
    "write_dicom_series",
]
