"""Stand-in for `medhub.io` in a Hub repo's remote code: medhub's own readers of 2D image files, nothing else.

A path to a DICOM radiograph, a PNG or a JPEG is read by medhub's readers (`medhub.io.formats`, `medhub.io.dicom`,
`medhub.io.images`, copied into the repo with this file): Modality LUT, the file's VOI window or LUT, MONOCHROME1
kept for the processor to invert, 16-bit PNGs kept 16-bit. DICOM needs pydicom, which medhub installs and plain
transformers does not: without it the error names pydicom and `medhub.pipeline`. Volumes (NIfTI, DICOM series)
need medhub; the names below say so instead of failing obscurely.
"""

import importlib.util

from ..errors import InputError
from ..io.dicom import DicomImage, read_dicom
from ..io.formats import sniff
from ..io.images import RasterImage, read_image

NEEDS_MEDHUB = ("reading DICOM series and NIfTI volumes needs medhub (pip install medhub; then use "
                "medhub.pipeline or medhub's processors): pass a numpy array here instead")
NEEDS_PYDICOM = ("a DICOM file: reading it needs the package 'pydicom' (pip install pydicom), which plain "
                 "transformers does not install; or use medhub.pipeline (pip install medhub), which reads it "
                 "the same way")


class Volume:
    """Never instantiated without medhub (no reader makes one)."""


def read_any(path, *args, **kwargs):
    """A DICOM image, PNG or JPEG file read as medhub reads it; volumes need medhub."""
    kind = sniff(path)
    if kind == "dicom":
        if importlib.util.find_spec("pydicom") is None:
            raise InputError(f"{path}: {NEEDS_PYDICOM}")
        return read_dicom(path)
    if kind in ("png", "jpeg"):
        return read_image(path)
    raise InputError(f"{path}: {NEEDS_MEDHUB}")


def reorient(volume, *args, **kwargs):
    raise InputError(f"volumes: {NEEDS_MEDHUB}")


def spacing_from_affine(affine, *args, **kwargs):
    raise InputError(f"volumes: {NEEDS_MEDHUB}")


def parse_axcodes(codes, *args, **kwargs):
    """The letters of an orientation saved by medhub (already checked there); applying it needs medhub."""
    return tuple(codes) if isinstance(codes, str) and len(codes) == 3 else None


__all__ = ["DicomImage", "RasterImage", "Volume", "read_any", "reorient", "spacing_from_affine", "parse_axcodes"]
