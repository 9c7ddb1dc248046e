"""`Volume`: a 3D image with its geometry, and the geometry helpers every reader and processor shares.

Axis convention (the one nibabel uses, and the one every medhub volume uses): `array[i, j, k]` is the
voxel at array index (i, j, k), and `affine @ [i, j, k, 1]` is its centre in millimetres in RAS+ world
coordinates: world x increases towards the patient's Right, y towards Anterior, z towards Superior
(NIfTI/nibabel). DICOM patient coordinates are LPS+ (x towards Left, y towards Posterior): the DICOM
series reader negates x and y to get RAS+. `axcodes` says, for each *array* axis, which direction it
increases towards: ("R", "A", "S") for a canonical volume, ("L", "P", "S") for a typical axial CT series.

The array is *not* transposed to (Z, Y, X) as SimpleITK/PyTorch-3D code often does: medhub models that
take (batch, channels, D, H, W) simply receive (X, Y, Z) in those slots; orientation and spacing are
explicit processor steps (`medhub.processing.VolumeImageProcessor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import orientations as nio

from ..errors import InputError


@dataclass
class Volume:
    """A 3D image: `array` (X, Y, Z) float32, `affine` 4x4 voxel->RAS mm, `spacing` mm per array axis.

    `header` keeps what the file said (a nibabel header, or the first slice's pydicom Dataset);
    `source` names the file or folder it came from (for error messages).
    """

    array: np.ndarray
    affine: np.ndarray
    spacing: tuple[float, float, float]
    source: str = ""
    header: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise InputError(f"{self.source or 'volume'}: affine must be 4x4, got shape {self.affine.shape}")
        if self.array.ndim != 3:
            raise InputError(f"{self.source or 'volume'}: expected a 3-D array (X, Y, Z), got shape {self.array.shape}")
        self.spacing = tuple(float(s) for s in self.spacing)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Which RAS direction each array axis increases towards (nibabel.aff2axcodes)."""
        return tuple(nib.aff2axcodes(self.affine))


def spacing_from_affine(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size per array axis: the length of each of the affine's first three columns."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))


def parse_axcodes(axcodes: str | tuple[str, ...]) -> tuple[str, str, str] | None:
    """("R", "A", "S") for "RAS"; None unless these are three codes naming three distinct world axes."""
    codes = tuple(str("".join(axcodes)).upper())
    try:
        ornt = nio.axcodes2ornt(codes)
    except ValueError:
        return None
    return codes if len(codes) == 3 and sorted(ornt[:, 0].tolist()) == [0, 1, 2] else None


def reorient(volume: Volume, axcodes: str | tuple[str, ...], name: str = "volume") -> Volume:
    """Flip/permute axes (no interpolation) so the array's axes point to `axcodes` (e.g. "RAS")."""
    target = parse_axcodes(axcodes)
    if target is None:
        raise InputError(f"{name}: axcodes {axcodes!r} are not three distinct axes such as 'RAS' or 'LPS'")
    try:
        current = nio.io_orientation(volume.affine)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise InputError(f"{volume.source or name}: cannot find the axis directions of the affine "
                         f"{np.asarray(volume.affine).round(4).tolist()} ({err})") from None
    if np.isnan(current).any():
        raise InputError(f"{volume.source or name}: the affine {np.asarray(volume.affine).round(4).tolist()} has a "
                         "degenerate axis; cannot reorient")
    wanted = nio.axcodes2ornt(target)
    transform = nio.ornt_transform(current, wanted)
    array = nio.apply_orientation(volume.array, transform)
    affine = volume.affine @ nio.inv_ornt_aff(transform, volume.array.shape)
    return Volume(np.ascontiguousarray(array), affine, spacing_from_affine(affine), volume.source, volume.header)


def to_canonical(volume: Volume) -> Volume:
    """The closest RAS+ orientation of `volume`, by axis flips/permutations only (nibabel.as_closest_canonical)."""
    image = nib.as_closest_canonical(nib.Nifti1Image(volume.array, volume.affine))
    array = np.asarray(image.dataobj, dtype=np.float32)
    return Volume(array, image.affine, spacing_from_affine(image.affine), volume.source, volume.header)


def save_nifti(array: np.ndarray, affine: np.ndarray, path: str | Path) -> Path:
    """Write `array` (X, Y, Z[, ...]) with `affine` as NIfTI-1 (.nii or .nii.gz), e.g. a predicted label map
    in the geometry of the input it was computed from. Integer arrays stay integer (label maps)."""
    path = Path(path)
    array = np.asarray(array)
    if array.ndim < 3:
        raise InputError(f"save_nifti({path}): expected at least a 3-D array (X, Y, Z), got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype == np.int64:
        array = array.astype(np.int32)  # NIfTI viewers handle int32 better than int64
    image = nib.Nifti1Image(array, np.asarray(affine, dtype=np.float64))
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    nib.save(image, str(path))
    return path
