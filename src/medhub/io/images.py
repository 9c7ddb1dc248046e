"""PNG/JPEG reading through Pillow, keeping the bit depth (8-bit, 16-bit) and the colour mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError

# Pillow mode -> bits per sample. "I;16" variants are 16-bit greyscale PNGs; "I" is Pillow's 32-bit int
# container, which PNG 16-bit files also open as on some Pillow versions (values stay within 0..65535).
_MODE_BITS = {"1": 1, "L": 8, "LA": 8, "P": 8, "RGB": 8, "RGBA": 8, "CMYK": 8, "YCbCr": 8,
              "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 32, "F": 32}


@dataclass
class RasterImage:
    """A PNG/JPEG image: `pixels` (H, W) or (H, W, C) in the file's own integer type (uint8 or uint16).

    mode: the Pillow mode of the file ("L", "RGB", "I;16", ...); bit_depth: bits per sample in the file.
    """

    pixels: np.ndarray
    mode: str
    bit_depth: int
    format: str
    source: str

    @property
    def max_value(self) -> int:
        """The largest value the file's bit depth can hold (255 for 8-bit, 65535 for 16-bit)."""
        return 2 ** min(self.bit_depth, 16) - 1


def read_image(path: str | Path) -> RasterImage:
    """Read a PNG or JPEG file; 16-bit PNGs stay uint16, palette images are expanded to RGB."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
            fmt, mode = image.format or "", image.mode
            if mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            elif mode == "1":
                image = image.convert("L")
            elif mode == "CMYK" or mode == "YCbCr":
                image = image.convert("RGB")
            pixels = np.array(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, MemoryError) as err:
        raise InputError(f"{path}: not a readable PNG/JPEG image ({type(err).__name__}: {err})") from None
    bits = _MODE_BITS.get(mode, 8)
    if mode == "I":  # 16-bit PNGs opened as 32-bit ints: keep them 16-bit when the values fit
        if pixels.min() >= 0 and pixels.max() <= 65535:
            pixels, bits = pixels.astype(np.uint16), 16
    elif bits == 16:
        pixels = pixels.astype(np.uint16)
    return RasterImage(pixels=pixels, mode=mode, bit_depth=bits, format=fmt, source=str(path))


__all__ = ["RasterImage", "read_image"]
