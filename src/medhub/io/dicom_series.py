"""DICOM slice series (CT/MR volumes): the slices sorted along the slice normal, checked to be one volume (same
orientation, spacing, size), with an affine in RAS+ (the NIfTI/nibabel convention, see `volume.py`), within
medhub's size limits (`medhub.io.limits`: the slices' declared pixels together)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from ..errors import InputError
from . import limits
from .dicom import LPS_TO_RAS, declared_pixels, decode_pixels, read_dataset
from .volume import Volume


def _series_files(folder_or_files: str | Path | list) -> list[Path]:
    if isinstance(folder_or_files, (str, Path)):
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise InputError(f"{folder}: expected a folder of DICOM slices (or a list of files)")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        where = str(folder)
    else:
        files = [Path(f) for f in folder_or_files]
        where = "the list of files"
    if not files:
        raise InputError(f"{where}: no DICOM files found")
    return files


@dataclass
class SeriesLayout:
    """The slices of one series in volume order, with the geometry `read_dicom_series` gives them.

    datasets / paths: one per slice, sorted along the slice normal (k = 0, 1, ...); affine: voxel (i = column,
    j = row, k) -> RAS+ mm; spacing: mm per array axis; shape: (X = columns, Y = rows, Z = slices).
    Writers of derived objects (DICOM SEG) use it to map a voxel of the series' volume back to its instance.
    """

    datasets: list[pydicom.Dataset]
    paths: list[Path]
    affine: np.ndarray
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]
    source: str


def _malformed(folder_or_files: str | Path | list, err: Exception) -> InputError:
    where = folder_or_files if isinstance(folder_or_files, (str, Path)) else "the list of files"
    return InputError(f"{where}: malformed DICOM slice ({type(err).__name__}: {' '.join(str(err).split())[:300]})")


def read_series_layout(folder_or_files: str | Path | list, *, pixels: bool = False) -> SeriesLayout:
    """Sort and check the slices of one DICOM series and compute its geometry (see `_series_layout`).

    pixels=False reads headers only (stop_before_pixels), enough for geometry and references."""
    try:
        return _series_layout(folder_or_files, pixels)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - pydicom parses elements lazily: any access may fail
        raise _malformed(folder_or_files, err) from None


def read_dicom_series(folder_or_files: str | Path | list) -> Volume:
    """Read the slices of one DICOM series (a folder, or a list of files) into a `Volume` in RAS+.

    See `_series_layout` for ordering, checks and geometry; a malformed attribute in any slice raises
    `InputError` naming the series."""
    layout = read_series_layout(folder_or_files, pixels=True)
    try:
        slices = []
        for ds, f in zip(layout.datasets, layout.paths):
            stored = decode_pixels(ds, f)
            if stored.ndim != 2:
                raise InputError(f"{f}: expected a single-frame greyscale slice, got pixel array shape {stored.shape}")
            slices.append(np.asarray(apply_modality_lut(stored, ds), dtype=np.float32))
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - pydicom parses elements lazily: any access may fail
        raise _malformed(folder_or_files, err) from None
    array = np.stack(slices, axis=-1).transpose(1, 0, 2)  # (rows, cols, k) -> (X = col, Y = row, Z = k)
    if not np.isfinite(array).all():
        raise InputError(f"{layout.paths[0].parent}: non-finite voxel values after the Modality LUT")
    return Volume(array, layout.affine, layout.spacing, layout.source, layout.datasets[0])


def _series_layout(folder_or_files: str | Path | list, pixels: bool) -> SeriesLayout:
    """Sort the slices of one DICOM series (a folder, or a list of files) and compute their RAS+ geometry.

    Ordering: slices are sorted by ImagePositionPatient projected on the slice normal (the cross product of
    the ImageOrientationPatient row and column directions); when positions are missing, by InstanceNumber.
    Consistency: one SeriesInstanceUID, equal rows/columns, orientation and pixel spacing, no duplicate
    positions and evenly spaced slices; anything else raises `InputError` naming the first offending file.

    Geometry: DICOM gives patient coordinates in LPS+. With F = [row direction, column direction] from
    ImageOrientationPatient, (dr, dc) = PixelSpacing (between rows, between columns), the voxel (i = column,
    j = row, k = slice) is at  P0 + i*dc*F_row + j*dr*F_col + k*step  (LPS, mm), where step is the vector
    between consecutive slice positions. The returned array is (X=i, Y=j, Z=k) and the affine is
    diag(-1, -1, 1, 1) @ that LPS affine, i.e. RAS+ as nibabel writes NIfTI.
    """
    files = _series_files(folder_or_files)
    datasets = [(read_dataset(f, stop_before_pixels=not pixels), f) for f in files]
    first, first_path = datasets[0]
    series = first.get("SeriesInstanceUID")
    for ds, f in datasets[1:]:
        if ds.get("SeriesInstanceUID") != series:
            raise InputError(f"{f}: SeriesInstanceUID {ds.get('SeriesInstanceUID')} differs from "
                             f"{first_path}'s {series}; pass one series")
    orientation = _orientation(first, first_path)
    normal = np.cross(orientation[0], orientation[1])
    spacing_rc = _pixel_spacing(first, first_path)
    shape = (int(first.Rows), int(first.Columns))
    for ds, f in datasets[1:]:
        if (int(ds.Rows), int(ds.Columns)) != shape:
            raise InputError(f"{f}: slice size {(ds.Rows, ds.Columns)} differs from {first_path}'s {shape}")
        if not np.allclose(_orientation(ds, f), orientation, atol=1e-4):
            raise InputError(f"{f}: ImageOrientationPatient differs from {first_path}'s; the series is not one volume")
        if not np.allclose(_pixel_spacing(ds, f), spacing_rc, rtol=1e-4):
            raise InputError(f"{f}: PixelSpacing {list(_pixel_spacing(ds, f))} differs from {first_path}'s "
                             f"{list(spacing_rc)}")

    where = str(folder_or_files) if isinstance(folder_or_files, (str, Path)) else str(first_path.parent)
    limits.check_decoded(where, sum(declared_pixels(ds)[1] for ds, _ in datasets), "the series' slices together")
    has_positions = all("ImagePositionPatient" in ds for ds, _ in datasets)
    if has_positions:
        def key(item):
            return float(np.dot(np.asarray(item[0].ImagePositionPatient, dtype=float), normal))
    elif all("InstanceNumber" in ds for ds, _ in datasets):
        def key(item):
            return int(item[0].InstanceNumber)
    else:
        raise InputError(f"{first_path}: slices have neither ImagePositionPatient nor InstanceNumber; cannot order "
                         f"the series")
    datasets.sort(key=key)

    origin = np.asarray(datasets[0][0].get("ImagePositionPatient", [0, 0, 0]), dtype=float)
    step = _slice_step(datasets, normal, has_positions)
    lps = np.eye(4)
    lps[:3, 0] = orientation[0] * spacing_rc[1]
    lps[:3, 1] = orientation[1] * spacing_rc[0]
    lps[:3, 2] = step
    lps[:3, 3] = origin
    affine = LPS_TO_RAS @ lps
    spacing = (spacing_rc[1], spacing_rc[0], float(np.linalg.norm(step)))
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12 or not min(spacing) > 0:
        raise InputError(f"{first_path}: ImageOrientationPatient/PixelSpacing/slice positions give a singular or "
                         f"non-finite geometry (spacing {spacing}); expected orthogonal unit directions and positive "
                         f"spacing")
    source = str(folder_or_files) if isinstance(folder_or_files, (str, Path)) else str(first_path.parent)
    return SeriesLayout([ds for ds, _ in datasets], [f for _, f in datasets], affine, spacing,
                        (shape[1], shape[0], len(datasets)), source)


def _orientation(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    iop = ds.get("ImageOrientationPatient")
    if iop is None or len(iop) != 6:
        raise InputError(f"{path}: ImageOrientationPatient (0020,0037) is missing; a series needs it to build a volume")
    return np.asarray(iop, dtype=float).reshape(2, 3)


def _pixel_spacing(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    spacing = ds.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise InputError(f"{path}: PixelSpacing (0028,0030) is missing; a series needs it to build a volume")
    return np.asarray(spacing, dtype=float)


def _slice_step(datasets: list, normal: np.ndarray, has_positions: bool) -> np.ndarray:
    """The LPS vector between consecutive slices; checks duplicates and even spacing (a missing slice)."""
    if len(datasets) == 1 or not has_positions:
        thickness = float(datasets[0][0].get("SpacingBetweenSlices") or datasets[0][0].get("SliceThickness") or 1.0)
        return normal * thickness
    positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for ds, _ in datasets])
    gaps = np.diff(positions @ normal)
    if np.any(gaps < 1e-4):
        bad = int(np.argmin(gaps))
        raise InputError(f"{datasets[bad + 1][1]}: same slice position as {datasets[bad][1]} (duplicate slice)")
    if not np.allclose(gaps, gaps.mean(), rtol=0.01, atol=1e-3):
        raise InputError(
            f"{datasets[0][1].parent}: uneven slice spacing along the normal (gaps {np.round(gaps, 3).tolist()} mm); "
            "a slice is missing or the series mixes acquisitions"
        )
    return (positions[-1] - positions[0]) / (len(positions) - 1)



__all__ = ["SeriesLayout", "read_dicom_series", "read_series_layout"]
