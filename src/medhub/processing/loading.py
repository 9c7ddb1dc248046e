"""Turn whatever a user passes for a 2D image (path, PIL image, array, tensor, DicomImage) into one form.

The result keeps what the intensity step needs to know: the DICOM metadata (window, VOI LUT,
MONOCHROME1) or, for integer images, the largest value their type can hold (255, 65535).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..io import DicomImage, RasterImage, Volume, read_any

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's "L" conversion


@dataclass
class Image2D:
    """array: float32 (H, W) or (H, W, C); dicom: the DICOM source, if any; max_value: integer type's range."""

    array: np.ndarray
    name: str
    dicom: DicomImage | None = None
    max_value: float | None = None


def load_2d(image: Any, name: str = "image") -> Image2D:
    """Accepts a path (DICOM/PNG/JPEG), a `DicomImage`, a `RasterImage`, a PIL image, a numpy array
    (H, W) or (H, W, C), or a torch tensor (H, W) or (C, H, W) (torch's channels-first convention)."""
    if isinstance(image, (str, Path)):
        name = str(image)
        image = read_any(image)
    if isinstance(image, Volume):
        raise InputError(f"{name}: is a 3-D volume {image.shape}; this processor takes 2D images (use "
                         f"VolumeImageProcessor)")
    if isinstance(image, DicomImage):
        pixels = image.pixels
        if image.number_of_frames > 1 or (pixels.ndim == 3 and pixels.shape[-1] not in (3, 4)):
            raise InputError(f"{name}: DICOM with {image.number_of_frames} frames {pixels.shape}; expected one "
                             "2D image")
        max_value = None
        if pixels.ndim == 3:  # colour DICOM: no Modality LUT, samples span the stored bit depth
            max_value = float(2 ** int(image.dataset.get("BitsStored", 8)) - 1)
        return _checked(Image2D(pixels.astype(np.float32), image.source, dicom=image, max_value=max_value))
    if isinstance(image, RasterImage):
        return _checked(Image2D(image.pixels.astype(np.float32), image.source, max_value=float(image.max_value)))
    if isinstance(image, Image.Image):
        if image.mode in ("P", "1", "CMYK", "YCbCr", "LA"):
            image = image.convert("RGBA" if image.mode == "P" and "transparency" in image.info else
                                  ("L" if image.mode in ("1", "LA") else "RGB"))
        array = np.array(image)
        max_value = 65535.0 if image.mode.startswith("I;16") else (None if image.mode in ("I", "F") else 255.0)
        return _checked(Image2D(array.astype(np.float32), name, max_value=max_value))
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            array = np.moveaxis(array, 0, -1)  # (C, H, W) -> (H, W, C)
        return _from_array(array, name)
    if isinstance(image, np.ndarray):
        return _from_array(image, name)
    raise InputError(f"{name}: unsupported image type {type(image).__name__}; expected a path, PIL image, "
                     "numpy array, torch tensor or medhub.io DicomImage/RasterImage")


def _from_array(array: np.ndarray, name: str) -> Image2D:
    if array.dtype == np.bool_:
        return _checked(Image2D(array.astype(np.float32), name, max_value=1.0))
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        max_value = float(info.max) if info.min == 0 else None  # signed ints: no natural range, min-max
        return _checked(Image2D(array.astype(np.float32), name, max_value=max_value))
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name}: array dtype {array.dtype} is not numeric")
    return _checked(Image2D(array.astype(np.float32), name))


def _checked(image: Image2D) -> Image2D:
    a = image.array
    if a.ndim == 3 and a.shape[-1] in (1, 2):  # greyscale, or greyscale + alpha (LA): alpha dropped, as for RGBA
        image.array = a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise InputError(f"{image.name}: image of shape {a.shape}; expected (H, W) or (H, W, C) with C in 1, 2, 3, 4")
    if min(a.shape[:2]) < 1:
        raise InputError(f"{image.name}: empty image of shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{image.name}: {int((~np.isfinite(a)).sum())} non-finite pixel(s) (NaN or Inf)")
    return image


def to_grey(array: np.ndarray) -> np.ndarray:
    """(H, W, 3|4) -> (H, W) luminance (alpha dropped); (H, W) unchanged."""
    if array.ndim == 2:
        return array
    return array[..., :3] @ LUMA_WEIGHTS


def minmax(array: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the image's own range; a constant image becomes all zeros."""
    lo, hi = float(array.min()), float(array.max())
    if hi <= lo:
        return np.zeros_like(array, dtype=np.float32)
    return ((array - lo) / (hi - lo)).astype(np.float32)
