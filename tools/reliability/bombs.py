"""Small files that decompress (or declare) gigabytes: the resource-exhaustion cases of issue 15.

Built in O(output) time and memory, whatever size they inflate to: a deflate stream of N zero bytes is one
compressed block of 1 MiB of zeros ended by a full flush (so it references nothing before it), repeated; a
gzip stream of zeros is one gzip member repeated (gzip readers read concatenated members). Used by the fuzz
targets (`fuzz.py`) and by the tests of the readers' and `medhub convert`'s limits.

- `deflated_dicom`: a DICOM file in the Deflated Explicit VR Little Endian transfer syntax whose data set
  inflates to the header plus `pixel_bytes` zeros of PixelData (the header may declare a small image);
- `nifti_bytes`: a NIfTI-1 header with any shape, datatype, vox_offset and extension sizes, then data;
- `gzip_zeros`: `prefix` then N zero bytes as a gzip stream (a `.nii.gz` with a huge extension or data);
- `torch_checkpoint`: a `torch.save`-format zip holding one float32 tensor of `numel` zeros, its storage
  member deflated (a 1 MB file holding a 1 GiB tensor); `write_zip` writes such archives.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zlib
from pathlib import Path

CHUNK = 1 << 20


def deflate_zeros(prefix: bytes, zeros: int) -> bytes:
    """A raw deflate stream (no zlib header) of `prefix` followed by `zeros` zero bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(CHUNK)) + compressor.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(zeros, CHUNK)
    return head + block * count + compressor.compress(bytes(rest)) + compressor.flush()


def crc32_zeros(prefix: bytes, zeros: int) -> int:
    crc = zlib.crc32(prefix)
    count, rest = divmod(zeros, CHUNK)
    block = bytes(CHUNK)
    for _ in range(count):
        crc = zlib.crc32(block, crc)
    return zlib.crc32(bytes(rest), crc)


def gzip_zeros(prefix: bytes, zeros: int) -> bytes:
    """A gzip stream (concatenated members) of `prefix` followed by `zeros` zero bytes."""
    import gzip

    count, rest = divmod(zeros, CHUNK)
    return gzip.compress(prefix, 9) + gzip.compress(bytes(CHUNK), 9) * count + gzip.compress(bytes(rest), 9)


def deflated_dicom(ds, pixel_bytes: int, out: Path) -> Path:
    """Write `ds` (a pydicom Dataset; its PixelData dropped) deflated, with PixelData of `pixel_bytes` zeros."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    header = ds.copy()
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in header:
            del header[keyword]
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, header)
    pixel_element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, pixel_bytes)
    meta = FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    target = io.BytesIO()
    target.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(target, meta, enforce_standard=True)
    out.write_bytes(target.getvalue() + deflate_zeros(body.getvalue() + pixel_element, pixel_bytes))
    return out


def nifti_bytes(shape: tuple[int, ...], datatype: int = 16, bitpix: int = 32, *, vox_offset: int | None = None,
                extensions: tuple[int, ...] = ()) -> bytes:
    """A NIfTI-1 single-file header (+ the extension flag and 8-byte extension headers of sizes
    `extensions`, contents not included): the caller appends the extension contents and the data."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(shape), *shape, *([1] * (7 - len(shape))))
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1.0, 1.0, 1.0, 1.0, 0, 0, 0, 0)
    first = 352 + sum(extensions)
    struct.pack_into("<f", header, 108, float(first if vox_offset is None else vox_offset))
    struct.pack_into("<f", header, 112, 1.0)  # scl_slope
    struct.pack_into("<hh", header, 252, 0, 1)  # qform_code 0, sform_code 1 (scanner)
    struct.pack_into("<12f", header, 280, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)
    header[344:348] = b"n+1\x00"
    flag = b"\x01\x00\x00\x00" if extensions else b"\x00\x00\x00\x00"
    return bytes(header) + flag + (struct.pack("<ii", extensions[0], 6) if extensions else b"")


def write_zip(path: Path, members: dict[str, bytes | tuple[bytes, int, int]]) -> Path:
    """A zip archive of `members`: name -> bytes (stored), or (raw deflate stream, crc32, size) (deflated).

    Written by hand so that a deflated member is stored as given (compressing 1 GiB again would take seconds)."""
    local, central = bytearray(), bytearray()
    for name, member in members.items():
        raw = name.encode()
        if isinstance(member, bytes):
            method, data, crc, size = 0, member, zlib.crc32(member), len(member)
        else:
            method, (data, crc, size) = 8, member
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        local += raw + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local) + bytes(central) + end)
    return path


def _tensor_pickle(key: str, numel: int) -> bytes:
    """The data.pkl of `torch.save({key: torch.zeros(numel)})`, written without making the tensor."""
    import torch

    storage = object()

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, 0, (numel,), (1,), False, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is storage else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({key: Tensor()})
    return buffer.getvalue()


def torch_checkpoint(path: Path, numel: int, key: str = "conv1.weight", deflate: bool = True) -> Path:
    """A `torch.save` zip archive holding {key: float32 zeros of `numel` elements}; the storage deflated."""
    nbytes = 4 * numel
    storage = (deflate_zeros(b"", nbytes), crc32_zeros(b"", nbytes), nbytes) if deflate else bytes(nbytes)
    return write_zip(path, {"archive/data.pkl": _tensor_pickle(key, numel), "archive/byteorder": b"little",
                            "archive/data/0": storage, "archive/version": b"3\n",
                            "archive/.data/serialization_id": b"0" * 40})


__all__ = ["crc32_zeros", "deflate_zeros", "deflated_dicom", "gzip_zeros", "nifti_bytes", "torch_checkpoint",
           "write_zip"]
