"""`declared_size(path)`: what a file says it holds, from its header alone, before anyone decodes it.

For an upload check (the Space) or a batch planner: `shape, nbytes, compressed = declared_size(path)` reads
only headers and raises `InputError` naming the file where the readers would refuse it for its size
(`medhub.io.limits`), so the caller can apply its own, smaller, limit to `nbytes` (or to the voxel count)
before reading:

- DICOM file: shape ([frames,] rows, cols[, samples]), rows x cols x frames x samples x BitsAllocated / 8;
  compressed when the transfer syntax compresses the pixels or deflates the data set (a deflated file is
  inflated in a bounded stream to count it, and refused past the limit);
- DICOM series folder: (cols, rows, slices) as `read_dicom_series` returns it, the slices' bytes summed;
- NIfTI (.nii/.nii.gz): the header's shape and shape x datatype size (extensions checked as the reader does);
- PNG/JPEG: (height, width[, channels]) and height x width x channels x bytes per sample (Pillow's header);
- a .zip: the members' declared sizes summed (each member's header read as above from the archive as a
  stream, without extracting it; a member whose uncompressed size in the zip directory is over the limits is
  refused unread), shape (number of members,): a zip of one series is not given a volume shape.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ..errors import InputError
from . import limits
from .dicom import declared_pixels, read_dicom_header
from .formats import JPEG_SIGNATURE, PNG_SIGNATURE, is_nifti_name
from .nifti import nifti_header


class DeclaredSize(NamedTuple):
    shape: tuple[int, ...]
    nbytes: int  # decoded bytes as stored (readers return float32: up to 4x this for 8-bit data)
    compressed: bool  # the file is smaller than what it decodes to (compressed pixels, deflate, gzip, zip)


def declared_size(path: str | Path) -> DeclaredSize:
    """(shape, nbytes, compressed) that `path` declares; see the module docstring. Reads headers only."""
    path = Path(path)
    if path.is_dir():
        return _series(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), str(path))
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if is_zip(path):
        return _zip(path)
    with open(path, "rb") as fh:
        return _one(fh, str(path))


def is_zip(path: Path) -> bool:
    """Whether `path` ends with a zip end-of-central-directory record (a malformed one too: `zipfile.is_zipfile`
    raises BadZipFile for some, e.g. a multi-disk record; opening the archive then says what is wrong)."""
    try:
        return zipfile.is_zipfile(path)
    except zipfile.BadZipFile:
        return True


def _one(fh: BinaryIO, name: str) -> DeclaredSize:
    """The declared size of one file from a seekable binary stream (a file, or a zip member)."""
    head = fh.read(132)
    fh.seek(0)
    if head[128:132] == b"DICM":
        return _dicom(fh, name)
    if is_nifti_name(name):
        header = nifti_header(fh, name)
        return DeclaredSize(header.shape, header.nbytes, header.compressed)
    if head.startswith(PNG_SIGNATURE) or head.startswith(JPEG_SIGNATURE):
        return _image(fh, name)
    raise InputError(f"{name}: not a DICOM, NIfTI, PNG or JPEG file (first bytes {head[:8]!r}); cannot say its size")


def _dicom(source: Path | BinaryIO, name: str) -> DeclaredSize:
    ds = read_dicom_header(source, name)
    try:
        shape, nbytes = declared_pixels(ds)
    except (AttributeError, TypeError, ValueError) as err:
        raise InputError(f"{name}: the DICOM header declares no usable image size ({type(err).__name__}: {err})") \
            from None
    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    compressed = syntax is not None and (syntax.is_compressed or syntax.is_deflated)
    return DeclaredSize(shape, nbytes, bool(compressed))


def _series(files: list[Path], where: str) -> DeclaredSize:
    if not files:
        raise InputError(f"{where}: no files; expected DICOM slices")
    sizes = [_dicom(f, str(f)) for f in files]
    rows, cols = sizes[0].shape[-2:]
    total = sum(s.nbytes for s in sizes)
    limits.check_decoded(where, total, "the series' slices together")
    return DeclaredSize((cols, rows, len(files)), total, any(s.compressed for s in sizes))


def _image(fh: BinaryIO, name: str) -> DeclaredSize:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(fh) as image:  # reads the header only
            width, height, bands, mode = image.width, image.height, len(image.getbands()), image.mode
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{name}: not a readable PNG/JPEG header ({type(err).__name__}: {err})") from None
    shape = (height, width) + ((bands,) if bands > 1 else ())
    return DeclaredSize(shape, height * width * bands * (2 if mode.startswith("I;16") else 4 if mode in ("I", "F")
                                                        else 1), True)


def _zip(path: Path) -> DeclaredSize:
    """Sum of the members' declared sizes, each member's header read from the archive as a stream (a member
    whose uncompressed size in the zip directory is over the limits is refused without reading it)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise InputError(f"{path}: not a readable zip archive ({err})") from None
    total = 0
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise InputError(f"{path}: the zip archive holds no files")
        for member in members:
            where = f"{path}!{member.filename}"
            limits.check_decoded(where, member.file_size - limits.MAX_HEADER_BYTES,
                                 "the zip directory (the member's uncompressed size, less the header allowance)")
            try:
                with archive.open(member) as fh:
                    total += _one(fh, where).nbytes
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise InputError(f"{where}: cannot be read from the archive ({err})") from None
            limits.check_decoded(str(path), total, "the zip archive's members together")
    return DeclaredSize((len(members),), total, True)


__all__ = ["DeclaredSize", "declared_size", "is_zip"]
