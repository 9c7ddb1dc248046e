"""Stand-in for `medhub.io` in a Hub repo's remote code: reading files (DICOM, NIfTI, PNG paths) is medhub's.

The processors of the remote code take PIL images, numpy arrays and tensors as they are; a file path, a DICOM
or a volume needs medhub's readers, and these names say so instead of failing obscurely.
"""

from ..errors import InputError

NEEDS_MEDHUB = ("reading DICOM, NIfTI or image files needs medhub (pip install medhub; then use "
                "medhub.pipeline or medhub's processors): pass a PIL image or a numpy array here instead")


class DicomImage:
    """Never instantiated without medhub (no reader makes one)."""


class RasterImage:
    """Never instantiated without medhub (no reader makes one)."""


class Volume:
    """Never instantiated without medhub (no reader makes one)."""


def read_any(path, *args, **kwargs):
    raise InputError(f"{path}: {NEEDS_MEDHUB}")


def reorient(volume, *args, **kwargs):
    raise InputError(f"volumes: {NEEDS_MEDHUB}")


def spacing_from_affine(affine, *args, **kwargs):
    raise InputError(f"volumes: {NEEDS_MEDHUB}")


def parse_axcodes(codes, *args, **kwargs):
    """The letters of an orientation saved by medhub (already checked there); applying it needs medhub."""
    return tuple(codes) if isinstance(codes, str) and len(codes) == 3 else None
