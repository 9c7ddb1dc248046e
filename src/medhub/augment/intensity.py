"""Intensity augmentation of the image keys only (labels are never touched).

- `RandomGamma`: nnU-Net (Isensee et al., Nature Methods 2021, supplementary note 4) draws gamma in
  (0.7, 1.5) with p=0.3 and applies it to the intensities rescaled to [0, 1], then restores the range,
  so it works for z-scored MRI as well as for 8-bit images.
- `RandomScaleShift`: DeepMedic's intensity augmentation (Kamnitsas et al., MedIA 2017; the released
  config `augm_img_prms_tr['hist_dist']`): per channel, I' = (I + shift) * scale with shift ~ N(0, 0.05)
  and scale ~ N(1, 0.01), on z-scored channels.
- `RandomGaussianNoise`: nnU-Net adds zero-mean Gaussian noise with variance uniform in (0, 0.1), p=0.1.
- `RandomInvert`: I' = 2 c - I (the intensities mirrored about `centre` c), so one network learns bright objects
  on a dark background and dark ones on a light background (fluorescence vs bright-field nuclei); with a
  processor normalising (x - 0.5) / s, grey 0.5 is 0 and inversion of the [0, 1] image is negation (c = 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ._base import RandomTransform, as_float_image, check_range

NNUNET_GAMMA_RANGE = (0.7, 1.5)
NNUNET_NOISE_VARIANCE = (0.0, 0.1)
DEEPMEDIC_SHIFT_STD = 0.05
DEEPMEDIC_SCALE_STD = 0.01


class _IntensityTransform(RandomTransform):
    """Intensity transforms ignore label keys; `spatial_dims` says which leading axes are channels."""

    def __init__(self, spatial_dims: int, p: float, image_keys: Sequence[str]):
        super().__init__(spatial_dims, p, image_keys, label_keys=())

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        for key in self.image_keys:
            if key in sample:
                sample[key] = self.transform(as_float_image(sample[key]), rng)
        return sample

    def transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def gamma_transform(image: np.ndarray, gamma: float, epsilon: float = 1e-7) -> np.ndarray:
    """((I - min) / range) ** gamma * range + min: gamma on [0, 1], original range kept."""
    low, high = float(image.min()), float(image.max())
    span = max(high - low, epsilon)
    return (np.power((image - low) / span, gamma) * span + low).astype(image.dtype, copy=False)


class RandomGamma(_IntensityTransform):
    """Gamma uniform in `gamma_range` (nnU-Net: (0.7, 1.5), p=0.3)."""

    def __init__(self, spatial_dims: int, gamma_range: Sequence[float] = NNUNET_GAMMA_RANGE, p: float = 0.3,
                 image_keys=("image",)):
        super().__init__(spatial_dims, p, image_keys)
        self.gamma_range = check_range(gamma_range, "gamma_range")
        if self.gamma_range[0] <= 0:
            raise InputError(f"gamma_range={tuple(gamma_range)}: expected positive gammas")

    def transform(self, image, rng):
        return gamma_transform(image, float(rng.uniform(*self.gamma_range)))


class RandomScaleShift(_IntensityTransform):
    """Per channel (I + shift) * scale, shift ~ N(0, shift_std), scale ~ N(1, scale_std) (DeepMedic)."""

    def __init__(self, spatial_dims: int, shift_std: float = DEEPMEDIC_SHIFT_STD,
                 scale_std: float = DEEPMEDIC_SCALE_STD, p: float = 1.0, image_keys=("image",)):
        super().__init__(spatial_dims, p, image_keys)
        if shift_std < 0 or scale_std < 0:
            raise InputError(f"shift_std={shift_std}, scale_std={scale_std}: expected non-negative std")
        self.shift_std, self.scale_std = float(shift_std), float(scale_std)

    def transform(self, image, rng):
        lead = image.shape[: image.ndim - self.spatial_dims]
        shape = lead + (1,) * self.spatial_dims
        shift = rng.normal(0.0, self.shift_std, size=shape)
        scale = rng.normal(1.0, self.scale_std, size=shape)
        return ((image + shift) * scale).astype(image.dtype, copy=False)


class RandomGaussianNoise(_IntensityTransform):
    """Add N(0, variance) noise, variance uniform in `variance_range` (nnU-Net: (0, 0.1), p=0.1)."""

    def __init__(self, spatial_dims: int, variance_range: Sequence[float] = NNUNET_NOISE_VARIANCE, p: float = 0.1,
                 image_keys=("image",)):
        super().__init__(spatial_dims, p, image_keys)
        self.variance_range = check_range(variance_range, "variance_range")
        if self.variance_range[0] < 0:
            raise InputError(f"variance_range={tuple(variance_range)}: expected non-negative variances")

    def transform(self, image, rng):
        std = np.sqrt(rng.uniform(*self.variance_range))
        return (image + rng.normal(0.0, std, size=image.shape)).astype(image.dtype, copy=False)


class RandomInvert(_IntensityTransform):
    """I' = 2 * centre - I with probability p (see the module docstring)."""

    def __init__(self, spatial_dims: int, centre: float = 0.0, p: float = 0.5, image_keys=("image",)):
        super().__init__(spatial_dims, p, image_keys)
        self.centre = float(centre)

    def transform(self, image, rng):
        return (2.0 * self.centre - image).astype(image.dtype, copy=False)
