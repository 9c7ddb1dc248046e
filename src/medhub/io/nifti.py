"""NIfTI reading through nibabel: the array as nibabel gives it (X, Y, Z), float32, with its affine."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import InputError
from .volume import Volume, save_nifti

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_nifti(path: str | Path) -> Volume:
    """Read a 3-D NIfTI file (.nii or .nii.gz) into a `Volume` (see `medhub.io.volume` for the axes).

    The data are scaled by the header's scl_slope/scl_inter (nibabel does this) and cast to float32.
    Spacing comes from the header zooms; the affine is nibabel's best affine (sform, else qform).
    A 4-D file whose last axis has length 1 is squeezed; other 4-D files are refused (split channels first).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such NIfTI file")
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for truncated/corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err})") from None
    return nifti_to_volume(image, str(path))


def nifti_to_volume(image, source: str) -> Volume:
    """A loaded nibabel image (e.g. a `datasets` Nifti value) as a checked `Volume`; `source` names it."""
    path = source
    try:
        array = np.asarray(image.get_fdata(dtype=np.float32))
    except Exception as err:  # nibabel raises many types for truncated/corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err})") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(f"{path}: expected a 3-D volume (X, Y, Z), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{path}: {int((~np.isfinite(array)).sum())} non-finite voxel(s) (NaN or Inf)")
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    if len(zooms) != 3 or not all(np.isfinite(z) and z > 0 for z in zooms):
        raise InputError(f"{path}: voxel size (pixdim) {zooms} is not three positive finite numbers")
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{path}: the header's affine (sform/qform) is singular or not finite: {affine.round(4).tolist()}")
    return Volume(array, affine, zooms, str(path), image.header)


def is_nifti_name(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


__all__ = ["is_nifti_name", "nifti_to_volume", "read_nifti", "save_nifti"]
