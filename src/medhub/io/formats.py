"""Which format a file is, from its first bytes: `sniff(path)`; imports nothing but the standard library.

Signatures, not names, decide, except for NIfTI whose gzip signature is shared with any .gz file (there the
name must end in .nii or .nii.gz). A Hub repo's remote code reads DICOM/PNG/JPEG paths through this module too
(`medhub.remote_code.io_stand_in`), so the two dispatch alike.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
GZIP_SIGNATURE = b"\x1f\x8b"
NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_name(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def sniff(path: str | Path) -> str:
    """Name the format of `path`: "dicom", "dicom-series", "nifti", "png" or "jpeg"; InputError otherwise."""
    path = Path(path)
    if path.is_dir():
        return "dicom-series"
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    with open(path, "rb") as fh:
        head = fh.read(132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if is_nifti_name(path):
        sizeof_hdr = int.from_bytes(head[:4], "little") if len(head) >= 4 else 0
        if head.startswith(GZIP_SIGNATURE) or sizeof_hdr in (348, 540) or int.from_bytes(head[:4], "big") in (348, 540):
            return "nifti"
        raise InputError(f"{path}: named like NIfTI but has neither a NIfTI header nor a gzip stream")
    raise InputError(
        f"{path}: unsupported or unrecognised file (first bytes {head[:8]!r}); medhub reads DICOM (with the "
        "'DICM' preamble at byte 128), NIfTI (.nii/.nii.gz), PNG and JPEG, and folders of DICOM slices"
    )


__all__ = ["GZIP_SIGNATURE", "JPEG_SIGNATURE", "NIFTI_SUFFIXES", "PNG_SIGNATURE", "is_nifti_name", "sniff"]
