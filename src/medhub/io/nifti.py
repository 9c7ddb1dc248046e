"""NIfTI reading through nibabel: the array as nibabel gives it (X, Y, Z), float32, with its affine.

Before nibabel reads anything, `nifti_header` parses the header itself (from the gzip stream for .nii.gz,
inflating only the header and extensions) and refuses, naming the file: a declared shape x datatype over
`medhub.io.limits.MAX_DECODED_BYTES`, a header with extensions over `MAX_HEADER_BYTES` (or extension sizes
that do not fit it: nibabel would read whatever an extension's size says), and complex data (medhub reads
real-valued volumes; casting would silently drop the imaginary part).
"""

from __future__ import annotations

import contextlib
import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import nibabel as nib
import numpy as np

from ..errors import InputError
from . import limits
from .formats import is_nifti_name
from .volume import Volume, save_nifti

# NIfTI datatype code -> (bytes per voxel, name); complex codes are refused.
DATATYPES = {2: (1, "uint8"), 4: (2, "int16"), 8: (4, "int32"), 16: (4, "float32"), 32: (8, "complex64"),
             64: (8, "float64"), 128: (3, "RGB24"), 256: (1, "int8"), 512: (2, "uint16"), 768: (4, "uint32"),
             1024: (8, "int64"), 1280: (8, "uint64"), 1536: (16, "float128"), 1792: (16, "complex128"),
             2048: (32, "complex256"), 2304: (4, "RGBA32")}
COMPLEX_DATATYPES = (32, 1792, 2048)


@dataclass(frozen=True)
class NiftiHeader:
    """What a NIfTI-1/2 header declares: shape (dim[1..dim[0]]), datatype code, bytes of voxel data, where
    the data start (vox_offset), and whether the file is gzip-compressed."""

    shape: tuple[int, ...]
    datatype: int
    nbytes: int
    vox_offset: int
    compressed: bool


def _open(source, name: str):
    """A binary stream of the NIfTI bytes (inflating a gzip stream as it is read) and whether it is gzip."""
    if isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise InputError(f"{name}: no such NIfTI file")
        source = open(source, "rb")
    start = source.tell()
    gz = source.read(2) == b"\x1f\x8b"
    source.seek(start)
    return (gzip.GzipFile(fileobj=source, mode="rb") if gz else source), gz, source


def _read_exact(fh, n: int, path: str, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise InputError(f"{path}: truncated NIfTI file (ends inside {what})")
    return data


def nifti_header(source: str | Path | BinaryIO, name: str | None = None) -> NiftiHeader:
    """Parse and check a NIfTI-1/2 header (and walk its extensions) without nibabel and without reading data.

    source: a path, or a seekable binary stream (e.g. a zip member) named `name` in errors. Raises
    `InputError` naming the file for a header that is not NIfTI, complex data, a declared size over
    `MAX_DECODED_BYTES`, or extensions over `MAX_HEADER_BYTES` / not fitting before the data."""
    path = name or str(source if isinstance(source, (str, Path)) else getattr(source, "name", "<NIfTI bytes>"))
    fh, gz, raw = _open(source, path)
    try:
        with raw if isinstance(source, (str, Path)) else contextlib.nullcontext():
            return _parse_header(fh, path, gz)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err})") from None


def _parse_header(fh, path: str, gz: bool) -> NiftiHeader:
    head = _read_exact(fh, 348, path, "the header")
    for order in "<>":
        (sizeof_hdr,) = struct.unpack(order + "i", head[:4])
        if sizeof_hdr in (348, 540):
            break
    else:
        raise InputError(f"{path}: not a NIfTI header (sizeof_hdr {struct.unpack('<i', head[:4])[0]}, "
                         "expected 348 for NIfTI-1 or 540 for NIfTI-2)")
    if sizeof_hdr == 348:
        dims = struct.unpack(order + "8h", head[40:56])
        datatype, vox_offset = struct.unpack(order + "h", head[70:72])[0], struct.unpack(order + "f", head[108:112])[0]
    else:
        head += _read_exact(fh, 540 - 348, path, "the NIfTI-2 header")
        datatype = struct.unpack(order + "h", head[12:14])[0]
        dims, vox_offset = struct.unpack(order + "8q", head[16:80]), struct.unpack(order + "q", head[168:176])[0]
    if datatype in COMPLEX_DATATYPES:
        raise InputError(f"{path}: complex voxel data ({DATATYPES[datatype][1]}, datatype {datatype}); medhub reads "
                         "real-valued volumes: save the magnitude (or the real and imaginary parts) as real images")
    if datatype not in DATATYPES:
        raise InputError(f"{path}: unknown NIfTI datatype {datatype}; expected one of {sorted(DATATYPES)}")
    ndim = dims[0]
    if not 1 <= ndim <= 7 or any(d < 1 for d in dims[1:ndim + 1]):
        raise InputError(f"{path}: dim {list(dims)} is not a valid NIfTI shape (dim[0] = 1..7 positive sizes)")
    shape = tuple(int(d) for d in dims[1:ndim + 1])
    nbytes = int(np.prod(shape, dtype=object)) * DATATYPES[datatype][0]
    limits.check_decoded(str(path), nbytes, "the NIfTI header (shape x datatype)")
    if not np.isfinite(vox_offset) or vox_offset < 0:
        raise InputError(f"{path}: vox_offset {vox_offset} is not a byte offset")
    vox_offset = int(vox_offset)
    _check_extensions(fh, path, order, sizeof_hdr, vox_offset)
    return NiftiHeader(shape, datatype, nbytes, vox_offset, gz)


def _check_extensions(fh, path: str, order: str, header_size: int, vox_offset: int) -> None:
    """Walk the extensions between the header and the data (reading only their 8-byte headers) as nibabel
    will read them, and refuse what would make it read more than MAX_HEADER_BYTES."""
    if vox_offset > limits.MAX_HEADER_BYTES:
        raise InputError(f"{path}: the header and its extensions declare {vox_offset:,} bytes (vox_offset), over "
                         f"medhub's limit of {limits.human(limits.MAX_HEADER_BYTES)} "
                         f"(medhub.io.limits.MAX_HEADER_BYTES;"
                         " set MEDHUB_MAX_HEADER_BYTES to read such files)")
    flag = fh.read(4)
    if len(flag) < 4 or flag[:1] == b"\x00":
        return  # no extensions (nibabel looks at the first byte only)
    position = header_size + 4
    if vox_offset < position:
        raise InputError(f"{path}: extensions are flagged but vox_offset {vox_offset} leaves them no room "
                         f"(the header ends at byte {position})")
    while vox_offset - position >= 16:
        esize, _ = struct.unpack(order + "ii", _read_exact(fh, 8, path, "an extension header"))
        if esize < 16 or position + esize > vox_offset:
            raise InputError(f"{path}: header extension at byte {position} declares {esize} bytes; expected at least "
                             f"16 and to end before the data (vox_offset {vox_offset})")
        fh.seek(position + esize)  # skips the content (a gzip stream inflates it in bounded chunks)
        position += esize


def read_nifti(path: str | Path) -> Volume:
    """Read a 3-D NIfTI file (.nii or .nii.gz) into a `Volume` (see `medhub.io.volume` for the axes).

    The data are scaled by the header's scl_slope/scl_inter (nibabel does this) and cast to float32.
    Spacing comes from the header zooms; the affine is nibabel's best affine (sform, else qform).
    A 4-D file whose last axis has length 1 is squeezed; other 4-D files are refused (split channels first).
    """
    path = Path(path)
    nifti_header(path)  # size limits, complex data and extensions, before nibabel reads anything
    try:
        image = nib.load(str(path))
    except Exception as err:  # nibabel raises many types for truncated/corrupt files
        raise InputError(f"{path}: not a readable NIfTI file ({type(err).__name__}: {err})") from None
    return nifti_to_volume(image, str(path))


def nifti_to_volume(image, source: str) -> Volume:
    """A loaded nibabel image (e.g. a `datasets` Nifti value) as a checked `Volume`; `source` names it."""
    path = source
    if np.issubdtype(image.get_data_dtype(), np.complexfloating):
        raise InputError(f"{path}: complex voxel data ({image.get_data_dtype()}); medhub reads real-valued volumes "
                         "(take the magnitude or the real part yourself first)")
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
        raise InputError(f"{path}: the header's affine (sform/qform) is singular or not finite: "
                         f"{affine.round(4).tolist()}")
    return Volume(array, affine, zooms, str(path), image.header)


__all__ = ["NiftiHeader", "is_nifti_name", "nifti_header", "nifti_to_volume", "read_nifti", "save_nifti"]
