"""`RadiographImageProcessor`: 2D radiographs (DICOM, PNG, JPEG, arrays) to `pixel_values` (N, C, H, W).

Steps, in order, each a saved field:
1. intensity to [0, 1] ("display" scale):
   - DICOM: the Modality LUT is already applied by the reader; then, when `use_dicom_voi` and the file has
     one, its VOI LUT table (pydicom.pixels.apply_voi) or its first window (center/width, with the file's
     VOI LUT Function: LINEAR, LINEAR_EXACT or SIGMOID, DICOM PS3.3 C.11.2.1.2-3); else min-max;
   - integer images (PNG/JPEG/uint arrays): divided by the type's range (255, 65535), nothing stretched;
   - float arrays: min-max;
2. MONOCHROME1 inversion (`invert_monochrome1`): 1 - x, so bone is bright as in MONOCHROME2;
3. colour to greyscale (BT.601 luminance), the model sees one grey image;
4. resize to exactly `size` (`resample`: bilinear with antialiasing, area, nearest), then optional centre crop;
   -> `display_image()` returns this, as uint8;
5. replicate to `num_channels` (1 or 3), then (x - image_mean) / image_std per channel when `do_normalize`.
Defaults of mean/std: ImageNet's for 3 channels; for 1 channel the average of ImageNet's channel statistics
(mean 0.449, std 0.226), which is what a pretrained RGB first layer summed to one channel expects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.pixels import apply_voi

from ..errors import ConfigError, InputError
from .base import RESAMPLE_MODES, MedImageProcessor, center_crop_chw, check_size, check_stats, resize_chw
from .loading import Image2D, load_2d, minmax, to_grey

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGENET_GREY_MEAN = [0.449]
IMAGENET_GREY_STD = [0.226]
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


class RadiographImageProcessor(MedImageProcessor):
    def __init__(
        self,
        num_channels: int = 1,
        use_dicom_voi: bool = True,
        invert_monochrome1: bool = True,
        do_resize: bool = True,
        size: dict[str, int] | int | None = None,
        resample: str = "bilinear",
        do_center_crop: bool = False,
        crop_size: dict[str, int] | int | None = None,
        do_normalize: bool = True,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        if num_channels not in (1, 3):
            raise ConfigError(f"{name}.num_channels={num_channels!r}: expected 1 (greyscale) or 3 (replicated grey)")
        if resample not in RESAMPLE_MODES:
            raise ConfigError(f"{name}.resample={resample!r}: expected one of {list(RESAMPLE_MODES)}")
        self.num_channels = num_channels
        self.use_dicom_voi = bool(use_dicom_voi)
        self.invert_monochrome1 = bool(invert_monochrome1)
        self.do_resize = bool(do_resize)
        self.size = check_size(name, "size", size if size is not None else 224, required=do_resize)
        self.resample = resample
        self.do_center_crop = bool(do_center_crop)
        self.crop_size = check_size(name, "crop_size", crop_size, required=do_center_crop)
        self.do_normalize = bool(do_normalize)
        if num_channels == 3:
            default_mean, default_std = IMAGENET_MEAN, IMAGENET_STD
        else:
            default_mean, default_std = IMAGENET_GREY_MEAN, IMAGENET_GREY_STD
        mean = image_mean if image_mean is not None else default_mean
        std = image_std if image_std is not None else default_std
        self.image_mean = check_stats(name, "image_mean", mean, num_channels)
        self.image_std = check_stats(name, "image_std", std, num_channels, positive=True)

    # -- steps ---------------------------------------------------------------------------------------------
    @classmethod
    def for_imagenet_classifier(cls, in_channels: int) -> RadiographImageProcessor | None:
        """The ImageNet-style input of the classifier families (CheXNet, ResNet, VGG): 224 x 224, normalised;
        None for channel counts other than 1 (greyscale) and 3 (RGB)."""
        return cls(num_channels=in_channels, size=224) if in_channels in (1, 3) else None

    @classmethod
    def default_for(cls, config) -> RadiographImageProcessor | None:
        """The classifier families' default: `for_imagenet_classifier(config.in_channels)`."""
        return cls.for_imagenet_classifier(config.in_channels)

    def to_unit_range(self, image: Image2D) -> np.ndarray:
        """Step 1-3: a greyscale (H, W) float32 image in [0, 1] as a radiologist would see it."""
        dicom = image.dicom
        if dicom is not None and image.array.ndim == 2:
            x = self._dicom_voi(image) if self.use_dicom_voi else None
            x = minmax(image.array) if x is None else x
            if dicom.is_monochrome1 and self.invert_monochrome1:
                x = 1.0 - x
            return x.astype(np.float32)
        x = image.array / image.max_value if image.max_value else minmax(image.array)
        return to_grey(np.clip(x, 0.0, 1.0)).astype(np.float32)

    @staticmethod
    def _dicom_voi(image: Image2D) -> np.ndarray | None:
        dicom = image.dicom
        if dicom.has_voi_lut_sequence:
            lut = dicom.dataset.VOILUTSequence[0]
            bits = int(lut.LUTDescriptor[2])
            return np.clip(apply_voi(image.array, dicom.dataset, index=0) / float(2 ** bits - 1), 0.0, 1.0)
        if dicom.window_center is None or dicom.window_width is None:
            return None
        return apply_window(image.array, dicom.window_center, dicom.window_width, dicom.voi_lut_function, image.name)

    def _spatial(self, grey: np.ndarray) -> np.ndarray:
        """Step 4 on a (H, W) image -> (1, H', W')."""
        x = grey[None]
        if self.do_resize:
            x = resize_chw(x, self.size["height"], self.size["width"], self.resample)
        if self.do_center_crop:
            x = center_crop_chw(x, self.crop_size["height"], self.crop_size["width"], "image")
        return np.clip(x, 0.0, 1.0)

    def display_image(self, image: Any) -> np.ndarray:
        """The image as the model sees it, before normalisation: uint8 (H, W) after steps 1-4 (for demos)."""
        x = self._spatial(self.to_unit_range(load_2d(image)))[0]
        return np.round(x * 255.0).astype(np.uint8)

    def process_one(self, image: Any) -> np.ndarray:
        """All steps for one image: float32 (C, H, W)."""
        x = self._spatial(self.to_unit_range(load_2d(image)))
        x = np.repeat(x, self.num_channels, axis=0)
        if self.do_normalize:
            mean = np.asarray(self.image_mean, dtype=np.float32)[:, None, None]
            std = np.asarray(self.image_std, dtype=np.float32)[:, None, None]
            x = (x - mean) / std
        return x.astype(np.float32)


def apply_window(x: np.ndarray, center: float, width: float, function: str = "LINEAR",
                 name: str = "image") -> np.ndarray:
    """DICOM VOI windowing (PS3.3 C.11.2.1.2 and C.11.2.1.3) to the output range [0, 1]."""
    function = function.upper()
    if function not in VOI_FUNCTIONS:
        raise InputError(f"{name}: VOI LUT Function {function!r} is not one of {list(VOI_FUNCTIONS)}")
    if function == "LINEAR":
        if width < 1:
            raise InputError(f"{name}: WindowWidth {width} < 1 is invalid for the LINEAR VOI function")
        c, w = center - 0.5, width - 1.0
        if w == 0:
            return (x > c).astype(np.float32)
        return np.clip((x - c) / w + 0.5, 0.0, 1.0).astype(np.float32)
    if width <= 0:
        raise InputError(f"{name}: WindowWidth {width} must be > 0 for the {function} VOI function")
    if function == "LINEAR_EXACT":
        return np.clip((x - center) / width + 0.5, 0.0, 1.0).astype(np.float32)
    return (1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))).astype(np.float32)


__all__ = ["RadiographImageProcessor", "apply_window", "IMAGENET_MEAN", "IMAGENET_STD"]
