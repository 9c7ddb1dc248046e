"""Local folders in the layouts medical data usually come in, checked row by row before anything is decoded.

- class-per-folder images: `root/<class>/*.png|jpg` -> image (`Image`), label (`ClassLabel`, sorted names)
- image + mask pairs: `root/images/<name>` + `root/masks/<name>` (same stem) -> id, image, mask (`Image`)
- one folder per subject of NIfTI volumes: `root/<subject>/<channel>.nii[.gz]` -> subject_id + one `Nifti`
  column per file stem; every volume of a subject must share the first one's shape and affine
- DICOM: `root/<series>/*.dcm` (one series per subfolder) -> series_id, series; or DICOM files directly in
  `root` -> id, dicom; both lazily decoded by `dicom_feature` (medhub.io readers)

Order is the sorted order of the names (numeric where names are numbers), never anything else. Problems
(empty folders, unpaired files, disagreeing geometry, and files the headers show to be unreadable: an image
Pillow cannot open or verify, a NIfTI file failing `medhub.io.nifti_header`'s size, extension and
complex-data checks or nibabel's) raise InputError naming the file, or in lenient mode are skipped and
counted in `dataset.info.description`.

An `id` (or `subject_id`) column is derived from a file or folder name: for DICOM exports often the original
SOPInstanceUID. `medhub.data.sharing.deidentify_dataset` remaps such columns with the UIDs before sharing.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
from datasets import ClassLabel, Features, Image, Nifti, Value
from PIL import Image as PILImage

from ..errors import InputError
from ..io import sniff
from ..io.nifti import is_nifti_name, nifti_header
from ._table import SkipReport, to_dataset
from .dicom_feature import DICOM_STRUCT, decode_dicom_columns, dicom_value

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
AFFINE_ATOL_MM = 1e-3


def natural_key(path: Path) -> tuple:
    """Sort "2.png" before "10.png": digit runs compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def entries(folder: Path) -> tuple[list[Path], list[Path]]:
    """(sub-folders, files) of `folder`, hidden ones left out, in natural order."""
    items = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=natural_key)
    return [p for p in items if p.is_dir()], [p for p in items if p.is_file()]


def nifti_stem(path: Path) -> str:
    return re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)


def detect_layout(root: Path) -> str | None:
    """"pairs", "classes", "nifti-subjects", "dicom-series", "dicom-files", or None (left to `datasets`)."""
    dirs, files = entries(root)
    if not dirs and not files:
        raise InputError(f"{root}: the folder is empty; expected images, volumes or a dataset's data files")
    names = {d.name for d in dirs}
    if {"images", "masks"} <= names:
        return "pairs"
    if files and all(f.suffix.lower() == ".dcm" for f in files):
        return "dicom-files"
    if not dirs or names & {"train", "validation", "valid", "val", "test", "data"}:
        return None  # parquet/csv/json, imagefolder with metadata or split folders: datasets knows these
    first_files = next((entries(d)[1] for d in dirs if entries(d)[1]), [])
    if not first_files:
        raise InputError(f"{root}: every sub-folder is empty; expected images, volumes or DICOM files in them")
    if all(is_nifti_name(f) for f in first_files):
        return "nifti-subjects"
    if all(f.suffix.lower() == ".dcm" for f in first_files):
        return "dicom-series"
    if all(f.suffix.lower() in IMAGE_SUFFIXES for f in first_files):
        return "classes"
    return None


def image_size(path: Path, report: SkipReport) -> tuple[int, int] | None:
    """(width, height) from an image file's header, its structure verified (PNG chunks and CRCs) without
    decoding the pixels; None (after `report.problem`) for a file Pillow cannot read."""
    try:
        with PILImage.open(path) as image:
            size = image.size
            image.verify()
        return size
    except (PILImage.UnidentifiedImageError, PILImage.DecompressionBombError, OSError, SyntaxError, ValueError,
            struct.error) as err:
        report.problem(f"{path}: not a readable image ({type(err).__name__}: {' '.join(str(err).split())[:200]})")
        return None


def load_classes(root: Path, *, split: str, streaming: bool, lenient: bool, num_shards: int | None = None):
    """Class-per-folder images: label names are the sorted sub-folder names; each image's header is checked."""
    report = SkipReport(str(root), lenient)
    class_dirs = entries(root)[0]
    names = [d.name for d in class_dirs]
    rows = []
    for label, folder in enumerate(class_dirs):
        files = entries(folder)[1]
        if not files:
            report.problem(f"{folder}: empty class folder; expected images of class {folder.name!r}")
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                report.problem(f"{path}: not an image file; expected one of {IMAGE_SUFFIXES}")
                continue
            if image_size(path, report) is not None:
                rows.append({"image": str(path), "label": label})
    features = Features({"image": Image(), "label": ClassLabel(names=names)})
    return to_dataset(rows, features, split=split, streaming=streaming, report=report,
                      what=f"Images in {len(names)} class folders", num_shards=num_shards)


def load_pairs(root: Path, *, split: str, streaming: bool, lenient: bool, num_shards: int | None = None,
               images: str = "images", masks: str = "masks"):
    """images/<stem>.* paired with masks/<stem>.*; sizes must agree (read from the headers only)."""
    report = SkipReport(str(root), lenient)
    image_files = entries(root / images)[1]
    mask_by_stem = {p.stem: p for p in entries(root / masks)[1]}
    if not image_files:
        raise InputError(f"{root / images}: no image files; expected images paired with {root / masks}")
    rows = []
    for image in image_files:
        mask = mask_by_stem.pop(image.stem, None)
        if mask is None:
            report.problem(f"{image}: no mask named {image.stem}.* in {root / masks}")
            continue
        size_a, size_b = image_size(image, report), image_size(mask, report)
        if size_a is None or size_b is None:
            continue
        if size_a != size_b:
            report.problem(f"{mask}: mask size {size_b} disagrees with its image {image} ({size_a})")
            continue
        rows.append({"id": image.stem, "image": str(image), "mask": str(mask)})
    for orphan in mask_by_stem.values():
        report.problem(f"{orphan}: mask without an image named {orphan.stem}.* in {root / images}")
    features = Features({"id": Value("string"), "image": Image(), "mask": Image()})
    return to_dataset(rows, features, split=split, streaming=streaming, report=report,
                      what="Image/mask pairs", num_shards=num_shards)


def nifti_image(path: Path, report: SkipReport):
    """The nibabel image of `path` (header only: medhub's size, extension and complex-data checks first, then
    nibabel's); None (after `report.problem`) for a file that is not a readable NIfTI volume."""
    try:
        nifti_header(path)
        return nib.load(str(path))
    except InputError as err:
        report.problem(str(err))
    except Exception as err:  # noqa: BLE001 - nibabel raises many types for corrupt headers
        report.problem(f"{path}: not a readable NIfTI file ({type(err).__name__}: {' '.join(str(err).split())[:200]})")
    return None


def check_geometry(files: list[Path], report: SkipReport) -> bool:
    """Every volume must be readable and have the first one's shape and affine (headers only); False if one
    is not or disagrees."""
    reference = nifti_image(files[0], report)
    if reference is None:
        return False
    for path in files[1:]:
        other = nifti_image(path, report)
        if other is None:
            return False
        if other.shape[:3] != reference.shape[:3]:
            report.problem(f"{path}: shape {other.shape} disagrees with {files[0].name} ({reference.shape}); "
                           "every volume of a subject must share one voxel grid")
            return False
        if not np.allclose(other.affine, reference.affine, atol=AFFINE_ATOL_MM):
            report.problem(f"{path}: affine disagrees with {files[0].name}'s (max difference "
                           f"{np.abs(other.affine - reference.affine).max():.4g} mm); resample it onto the image grid")
            return False
    return True


def load_nifti_subjects(root: Path, *, split: str, streaming: bool, lenient: bool, num_shards: int | None = None,
                        files: dict[str, str] | None = None, subjects: list[str] | None = None,
                        what: str = "NIfTI volumes, one folder per subject"):
    """One row per subject folder: subject_id + a `Nifti` column per file (decoded lazily by nibabel).

    files: column name -> file stem (e.g. {"flair": "Flair_subtrMeanDivStd"}); default: every NIfTI file
    of the first subject, the column named by its stem. subjects: only these folders, in this order.
    """
    report = SkipReport(str(root), lenient)
    folders = entries(root)[0] if subjects is None else [root / s for s in subjects]
    if not folders:
        raise InputError(f"{root}: no subject folders; expected <subject>/<channel>.nii.gz")
    if files is None:
        first = [f for f in entries(folders[0])[1] if is_nifti_name(f)]
        files = {nifti_stem(f): nifti_stem(f) for f in first}
    rows = []
    for folder in folders:
        by_stem = {nifti_stem(f): f for f in entries(folder)[1] if is_nifti_name(f)} if folder.is_dir() else {}
        missing = [stem for stem in files.values() if stem not in by_stem]
        if missing:
            report.problem(f"{folder}: missing {', '.join(m + '.nii[.gz]' for m in missing)}")
            continue
        paths = [by_stem[stem] for stem in files.values()]
        if check_geometry(paths, report):
            rows.append({"subject_id": folder.name, **{col: str(p) for col, p in zip(files, paths)}})
    features = Features({"subject_id": Value("string"), **{col: Nifti() for col in files}})
    return to_dataset(rows, features, split=split, streaming=streaming, report=report, what=what,
                      num_shards=num_shards)


def load_dicom(root: Path, *, split: str, streaming: bool, lenient: bool, num_shards: int | None = None,
               decode: bool = True, series: bool = True):
    """DICOM series (one per sub-folder, decoded to `Volume`) or DICOM files in `root` (to `DicomImage`)."""
    report = SkipReport(str(root), lenient)
    dirs, files = entries(root)
    rows = []
    for item in (dirs if series else files):
        dcm = [f for f in entries(item)[1] if f.suffix.lower() == ".dcm"] if series else [item]
        if not dcm:
            report.problem(f"{item}: no .dcm files; expected one DICOM series per sub-folder")
            continue
        not_dicom = [f for f in dcm if not is_dicom(f)]
        if not_dicom:
            report.problem(f"{not_dicom[0]}: not a DICOM file (no 'DICM' preamble at byte 128)")
            continue
        rows.append({"id": item.name if series else item.stem, "dicom": dicom_value(item)})
    column = "series" if series else "dicom"
    rows = [{"id": r["id"], column: r["dicom"]} for r in rows]
    features = Features({"id": Value("string"), column: DICOM_STRUCT})
    dataset = to_dataset(rows, features, split=split, streaming=streaming, report=report,
                         what="DICOM series, one per folder" if series else "DICOM images", num_shards=num_shards)
    return decode_dicom_columns(dataset, [column]) if decode else dataset


def is_dicom(path: Path) -> bool:
    """True when the file has DICOM's 'DICM' preamble (medhub.io.sniff); False for anything else."""
    try:
        return sniff(path) == "dicom"
    except InputError:
        return False


LAYOUTS = {
    "classes": load_classes,
    "pairs": load_pairs,
    "nifti-subjects": load_nifti_subjects,
    "dicom-series": lambda root, **kw: load_dicom(root, series=True, **kw),
    "dicom-files": lambda root, **kw: load_dicom(root, series=False, **kw),
}

__all__ = ["LAYOUTS", "detect_layout", "load_classes", "load_dicom", "load_nifti_subjects", "load_pairs"]
