"""DICOM reading through pydicom: single images (radiographs, multi-frame), within medhub's size limits; slice
series (CT/MR volumes) are `dicom_series.py`.

pydicom decodes the pixel data (compressed transfer syntaxes through its plugins: Pillow, pylibjpeg,
GDCM, ...); what we add is the medical bookkeeping: the Modality LUT (RescaleSlope/Intercept) applied to
float32, the display metadata kept (photometric interpretation, window, VOI LUT), and, for series, slice
ordering along the slice normal and an affine in RAS+ (the NIfTI/nibabel convention, see `volume.py`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

from ..errors import InputError
from . import limits

# Which pip package decodes which compressed transfer syntax when pydicom's built-in/Pillow decoders cannot.
_CODEC_PACKAGES = {
    "JPEG-LS": "pyjpegls (a highdicom dependency), or pylibjpeg + pylibjpeg-libjpeg, or python-gdcm",
    "JPEG 2000": "pylibjpeg + pylibjpeg-openjpeg (or python-gdcm)",
    "JPEG": "pylibjpeg + pylibjpeg-libjpeg (or python-gdcm)",
    "RLE": "pylibjpeg + pylibjpeg-rle (or python-gdcm)",
    "High-Throughput JPEG 2000": "pylibjpeg + pylibjpeg-openjpeg",
}
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class DicomImage:
    """One DICOM image file.

    pixels: float32 after the Modality LUT (stored value * RescaleSlope + RescaleIntercept, e.g. HU for CT);
        shape (rows, cols), (frames, rows, cols) for multi-frame, (..., rows, cols, 3) for colour.
    photometric_interpretation: "MONOCHROME1" means high values are displayed *dark* (invert for display).
    window_center / window_width: the first VOI window stored in the file (None when absent);
    voi_lut_function: "LINEAR" (default), "LINEAR_EXACT" or "SIGMOID"; has_voi_lut_sequence: a VOI LUT table.
    pixel_spacing: (row spacing, column spacing) in mm, from PixelSpacing or ImagerPixelSpacing.
    dataset: the pydicom Dataset, for every other tag.
    """

    pixels: np.ndarray
    photometric_interpretation: str
    rescale_slope: float
    rescale_intercept: float
    window_center: float | None
    window_width: float | None
    voi_lut_function: str
    has_voi_lut_sequence: bool
    pixel_spacing: tuple[float, float] | None
    number_of_frames: int
    source: str
    dataset: Any = field(repr=False, default=None)

    @property
    def is_monochrome1(self) -> bool:
        return self.photometric_interpretation == "MONOCHROME1"

    @property
    def stored_pixels(self) -> np.ndarray:
        """The pixel values before the Modality LUT (what pydicom's VOI LUT functions expect as input)."""
        return self.dataset.pixel_array


def _check_deflated(fp: BinaryIO, name: str) -> None:
    """Refuse a deflated-transfer-syntax data set that inflates past the limits, before pydicom inflates it
    (pydicom inflates the whole data set in memory, even with stop_before_pixels): the inflated bytes are
    counted in a stream and dropped. `fp` is left where it was."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    start = fp.tell()
    try:
        read_preamble(fp, True)
        syntax = _read_file_meta_info(fp).get("TransferSyntaxUID")
    except Exception:  # noqa: BLE001 - not readable here: pydicom's own read below says why
        syntax = None
    try:
        if syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
            cap = limits.MAX_DECODED_BYTES + limits.MAX_HEADER_BYTES
            if limits.inflated_size(fp, cap, name) > cap:
                raise InputError(
                    f"{name}: the deflated DICOM data set inflates to more than {limits.human(cap)}, over medhub's "
                    f"limit (medhub.io.limits.MAX_DECODED_BYTES + MAX_HEADER_BYTES; set MEDHUB_MAX_DECODED_BYTES to "
                    "read larger files)")
    finally:
        fp.seek(start)


def dcmread_bounded(source: str | Path | BinaryIO, name: str | None = None, *, stop_before_pixels: bool = False,
                    force: bool = False) -> pydicom.Dataset:
    """`pydicom.dcmread` that first refuses a deflated data set inflating past medhub's limits (see
    `medhub.io.limits`); pydicom's own errors pass through. `name` names the source in errors."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fp:
            return dcmread_bounded(fp, name or str(source), stop_before_pixels=stop_before_pixels, force=force)
    _check_deflated(source, name or str(getattr(source, "name", "<DICOM bytes>")))
    return pydicom.dcmread(source, stop_before_pixels=stop_before_pixels, force=force)


def read_dicom_header(source: str | Path | BinaryIO, name: str | None = None) -> pydicom.Dataset:
    """The header of a DICOM file (path or binary stream), without its pixel data, within medhub's limits.

    Raises `InputError` naming the file for anything pydicom cannot read. A stream without the 'DICM'
    preamble is read as a bare data set (force)."""
    where = name or str(source if isinstance(source, (str, Path)) else getattr(source, "name", "<DICOM bytes>"))
    try:
        force = False
        if not isinstance(source, (str, Path)):
            start = source.tell()
            force = source.read(132)[128:132] != b"DICM"
            source.seek(start)
        return dcmread_bounded(source, where, stop_before_pixels=True, force=force)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - InvalidDicomError, EOFError, struct/OSError on truncated files
        raise InputError(f"{where}: not a readable DICOM file ({type(err).__name__}: {err})") from None


def read_dataset(path: Path, stop_before_pixels: bool = False) -> pydicom.Dataset:
    if not path.is_file():
        raise InputError(f"{path}: no such DICOM file")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = dcmread_bounded(path, stop_before_pixels=stop_before_pixels)
    except InputError:
        raise
    except Exception as err:  # InvalidDicomError, EOFError, struct/OSError on truncated files
        raise InputError(f"{path}: not a readable DICOM file ({type(err).__name__}: {err})") from None
    # pydicom reads truncated files leniently (dropping the rest with a warning): refuse them instead.
    for warning in caught:
        text = str(warning.message)
        if "end of file" in text.lower() or "truncat" in text.lower():
            raise InputError(f"{path}: truncated DICOM file ({text})")
    return ds


def declared_pixels(ds: pydicom.Dataset) -> tuple[tuple[int, ...], int]:
    """(shape, bytes) the header declares for the pixel data: ([frames,] rows, cols[, samples]) and
    rows x cols x frames x samples x BitsAllocated / 8, read from the header alone."""
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames, samples = int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("SamplesPerPixel", 1) or 1)
    bits = int(ds.get("BitsAllocated", 8) or 8)
    shape = ((frames,) if frames > 1 else ()) + (rows, cols) + ((samples,) if samples > 1 else ())
    return shape, max(rows, 0) * max(cols, 0) * max(frames, 0) * max(samples, 0) * ((max(bits, 1) + 7) // 8)


PIXELS_DECLARED = "the pixel data (Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated)"
PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def decode_pixels(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    if any(tag in ds for tag in PIXEL_TAGS):  # without pixel data, _decode_unchecked says so
        limits.check_decoded(str(path), declared_pixels(ds)[1], PIXELS_DECLARED)
    pixels = _decode_unchecked(ds, path)
    declared = declared_pixels(ds)[0]
    if pixels.shape != declared:
        raise InputError(f"{path}: decoded pixel data has shape {pixels.shape} but the header declares {declared} "
                         "(NumberOfFrames, Rows, Columns, SamplesPerPixel); corrupt or inconsistent file")
    return pixels


def _decode_unchecked(ds: pydicom.Dataset, path: Path) -> np.ndarray:
    if not any(tag in ds for tag in PIXEL_TAGS):
        if "SOPClassUID" not in ds:
            raise InputError(f"{path}: not a valid DICOM image (no SOP Class UID, no pixel data); corrupt or not an "
                             f"image")
        raise InputError(f"{path}: the DICOM file has no pixel data (SOP class: {ds.SOPClassUID}); expected an image")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and not syntax.is_transfer_syntax:
        raise InputError(f"{path}: TransferSyntaxUID {syntax} is not a DICOM transfer syntax")
    if syntax is not None and syntax.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise InputError(f"{path}: pydicom has no decoder for transfer syntax {syntax.name} ({syntax})") from None
        if not decoder.is_available:
            package = next((pkg for key, pkg in _CODEC_PACKAGES.items() if syntax.name.startswith(key)),
                           "pylibjpeg or python-gdcm")
            raise InputError(
                f"{path}: pixel data is compressed with {syntax.name} ({syntax}) and no installed codec decodes it; "
                f"install {package} (pip install ...)."
            )
    try:
        return ds.pixel_array
    except Exception as err:  # truncated pixel data, bad encapsulation, codec failure
        raise InputError(f"{path}: cannot decode the pixel data ({type(err).__name__}: {err})") from None


def _first(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        value = value[0] if len(value) else None
    return None if value is None else float(value)


def read_dicom(path: str | Path) -> DicomImage:
    """Read one DICOM image file (a radiograph, a slice, multi-frame) with its display metadata.

    Any malformed attribute (a value of the wrong type, a corrupt element found while parsing lazily)
    raises `InputError` naming the file, never a pydicom/numpy exception."""
    try:
        return _read_dicom(path)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - pydicom parses elements lazily: any access may fail
        reason = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: malformed DICOM file ({type(err).__name__}: {reason})") from None


def _read_dicom(path: str | Path) -> DicomImage:
    """Read one DICOM file (radiograph, single slice or multi-frame) with its display metadata."""
    path = Path(path)
    ds = read_dataset(path)
    stored = decode_pixels(ds, path)
    pixels = np.asarray(apply_modality_lut(stored, ds), dtype=np.float32)
    if not np.isfinite(pixels).all():
        raise InputError(f"{path}: {int((~np.isfinite(pixels)).sum())} non-finite pixel(s) (NaN or Inf)")
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    _check_voi_luts(ds, path)
    window = (_first(ds.get("WindowCenter")), _first(ds.get("WindowWidth")))
    if any(v is not None and not np.isfinite(v) for v in window):
        raise InputError(f"{path}: WindowCenter/WindowWidth {window} are not finite numbers")
    return DicomImage(
        pixels=pixels,
        photometric_interpretation=str(ds.get("PhotometricInterpretation", "MONOCHROME2")),
        rescale_slope=float(ds.get("RescaleSlope", 1.0) or 1.0),
        rescale_intercept=float(ds.get("RescaleIntercept", 0.0) or 0.0),
        window_center=_first(ds.get("WindowCenter")),
        window_width=_first(ds.get("WindowWidth")),
        voi_lut_function=str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper(),
        has_voi_lut_sequence="VOILUTSequence" in ds,
        pixel_spacing=tuple(float(v) for v in spacing) if spacing else None,
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        source=str(path),
        dataset=ds,
    )


def _check_voi_luts(ds: pydicom.Dataset, path: Path) -> None:
    """Every VOI LUT table must be usable: a 3-value LUTDescriptor (entries, first mapped value, bits 1..16) and
    LUTData holding that many entries; an empty or short table would fail (or be misread) when displayed."""
    for i, item in enumerate(ds.get("VOILUTSequence") or []):
        where = f"{path}: VOILUTSequence[{i}]"
        descriptor = item.get("LUTDescriptor")
        if descriptor is None or len(descriptor) != 3 or not 1 <= int(descriptor[2]) <= 16:
            raise InputError(f"{where}: LUTDescriptor {descriptor!r} is not (entries, first value, bits 1..16)")
        data = item.get("LUTData")
        entries = 0 if data is None else len(data) // 2 if isinstance(data, bytes) else len(data) \
            if isinstance(data, (list, pydicom.multival.MultiValue)) else 1
        expected = int(descriptor[0]) or 65536
        if entries != expected:
            raise InputError(f"{where}: LUTData holds {entries} entries but LUTDescriptor declares {expected}; "
                             "expected a complete VOI LUT table (or none)")


__all__ = ["DicomImage", "dcmread_bounded", "declared_pixels", "read_dicom", "read_dicom_header"]
