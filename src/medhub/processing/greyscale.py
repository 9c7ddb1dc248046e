"""`GreyscaleImageProcessor`: 2D greyscale microscopy/EM images to `pixel_values` (N, 1, H, W).

Steps, each a saved field: integer images divided by their type's range (uint8 / 255, uint16 / 65535;
float images must already lie in [0, 1]); optional resize to `size`; optional (x - mean) / std.
No crop: segmentation models (U-Net) need the whole field of view, their outputs are mapped back to it.
A colour image is accepted only when its channels are identical (a grey image saved as RGB).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .base import RESAMPLE_MODES, MedImageProcessor, check_size, check_stats, resize_chw
from .loading import load_2d


class GreyscaleImageProcessor(MedImageProcessor):
    def __init__(
        self,
        do_resize: bool = False,
        size: dict[str, int] | int | None = None,
        resample: str = "bilinear",
        do_normalize: bool = False,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        if resample not in RESAMPLE_MODES:
            raise ConfigError(f"{name}.resample={resample!r}: expected one of {list(RESAMPLE_MODES)}")
        self.do_resize = bool(do_resize)
        self.size = check_size(name, "size", size, required=do_resize)
        self.resample = resample
        self.do_normalize = bool(do_normalize)
        self.image_mean = check_stats(name, "image_mean", image_mean if image_mean is not None else [0.5], 1)
        self.image_std = check_stats(name, "image_std", image_std if image_std is not None else [0.5], 1, positive=True)

    @classmethod
    def default_for(cls, config) -> GreyscaleImageProcessor | None:
        """Greyscale microscopy/EM scaled to [0, 1] (the U-Net paper's ISBI setting); 1-channel models only."""
        return cls() if config.in_channels == 1 else None

    def to_unit_range(self, image: Any) -> np.ndarray:
        """(H, W) float32 in [0, 1]."""
        loaded = load_2d(image)
        x = loaded.array
        if x.ndim == 3:
            if not all(np.array_equal(x[..., 0], x[..., c]) for c in range(1, min(x.shape[-1], 3))):
                raise InputError(f"{loaded.name}: colour image {x.shape}; expected a greyscale image (H, W)")
            x = x[..., 0]
        if loaded.max_value:
            return (x / loaded.max_value).astype(np.float32)
        if x.min() < 0.0 or x.max() > 1.0:
            raise InputError(
                f"{loaded.name}: float image with values in [{x.min():.4g}, {x.max():.4g}]; expected [0, 1] "
                "(pass the integer image, or scale it yourself)"
            )
        return x.astype(np.float32)

    def process_one(self, image: Any) -> np.ndarray:
        x = self.to_unit_range(image)[None]
        if self.do_resize:
            x = resize_chw(x, self.size["height"], self.size["width"], self.resample)
        if self.do_normalize:
            x = (x - self.image_mean[0]) / self.image_std[0]
        return x.astype(np.float32)


__all__ = ["GreyscaleImageProcessor"]
