"""Size limits of medhub's readers, checked from the headers *before* anything is inflated or decoded.

A small file can declare (or inflate to) gigabytes: a deflated DICOM data set, a `.nii.gz` with a huge header
extension or shape, a compressed pixel stream declaring 65535 x 65535 pixels. Each reader checks what the file
declares against these limits first and refuses with an `InputError` naming the file, the size and the limit:

    MAX_DECODED_BYTES  1 GiB  env MEDHUB_MAX_DECODED_BYTES
        the pixel or voxel data of one file as stored (rows x columns x frames x samples x bytes per sample for
        DICOM, the NIfTI shape x its datatype's size), and of one DICOM series (all its slices together);
        medhub's readers return float32, so 8- and 16-bit data take up to 4x / 2x that in memory.
    MAX_HEADER_BYTES   16 MiB env MEDHUB_MAX_HEADER_BYTES
        what comes before the data: a NIfTI header with its extensions (vox_offset), and the non-pixel part
        of a deflated DICOM data set (which may inflate to MAX_DECODED_BYTES + MAX_HEADER_BYTES in all).

The variables are read once, at import; code that wants other limits in one process may set the module
attributes (`medhub.io.limits.MAX_DECODED_BYTES = ...`), which every check reads when it runs.
`medhub.io.declared_size(path)` reports what a file declares (shape, bytes, compressed) without decoding it.
"""

from __future__ import annotations

import os
import zlib
from typing import BinaryIO

from ..errors import ConfigError, InputError

INFLATE_CHUNK = 1 << 20  # bytes read, and at most produced, per inflate step: memory stays bounded


def env_bytes(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(f"{name}={text!r}: expected a whole number of bytes") from None
    if value <= 0:
        raise ConfigError(f"{name}={text!r}: expected a positive number of bytes")
    return value


MAX_DECODED_BYTES = env_bytes("MEDHUB_MAX_DECODED_BYTES", 1 << 30)
MAX_HEADER_BYTES = env_bytes("MEDHUB_MAX_HEADER_BYTES", 16 << 20)


def human(n: int) -> str:
    """1073741824 -> '1 GiB', 16777216 -> '16 MiB'."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def check_decoded(name: str, nbytes: int, what: str) -> None:
    """Refuse data that would decode to more than MAX_DECODED_BYTES (`what` says what was counted)."""
    if nbytes > MAX_DECODED_BYTES:
        raise InputError(
            f"{name}: {what} declares {nbytes:,} bytes ({human(nbytes)}) of decoded data, over medhub's limit of "
            f"{human(MAX_DECODED_BYTES)} (medhub.io.limits.MAX_DECODED_BYTES; set MEDHUB_MAX_DECODED_BYTES to "
            "read larger files)")


def inflated_size(fp: BinaryIO, cap: int, name: str) -> int:
    """Bytes a raw deflate stream (the rest of `fp`) inflates to, counted without keeping them; stops once
    past `cap` (the result is then > cap). Memory stays at INFLATE_CHUNK whatever the ratio."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while total <= cap and not inflater.eof:
            data = inflater.unconsumed_tail or fp.read(INFLATE_CHUNK)
            if not data:
                break
            total += len(inflater.decompress(data, INFLATE_CHUNK))
    except zlib.error as err:
        raise InputError(f"{name}: corrupt deflated data ({err})") from None
    return total


__all__ = ["MAX_DECODED_BYTES", "MAX_HEADER_BYTES", "check_decoded", "env_bytes", "human", "inflated_size"]
