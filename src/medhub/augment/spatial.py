"""Flips, 90-degree rotations, small-angle rotations and scaling, applied alike to image and label.

Default ranges and probabilities follow nnU-Net's data augmentation (Isensee et al., Nature Methods
2021, supplementary note 4): mirroring along each axis with p=0.5, rotation in (-30, 30) degrees with
p=0.2, isotropic scaling in (0.7, 1.4) with p=0.2. DeepMedic (Kamnitsas et al., MedIA 2017) reflects
along the sagittal axis with p=0.5: `RandomFlip(3, axes=(0,), p=0.5)` for a (x, y, z) volume.
Rotations and scaling resample about the centre of the spatial grid, images with cubic splines and
labels with nearest neighbour, mirroring outside the grid (as the elastic deformation does).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ._base import IMAGE_ORDER, RandomTransform, as_float_image, check_probability, check_range, map_leading

NNUNET_ROTATION_DEGREES = 30.0
NNUNET_SCALE_RANGE = (0.7, 1.4)


def flip(array: np.ndarray, spatial_axes: Sequence[int], spatial_dims: int) -> np.ndarray:
    """Mirror `array` along the given spatial axes (0 = first spatial axis; channels are leading)."""
    axes = tuple(a - spatial_dims for a in spatial_axes)
    return np.flip(array, axis=axes) if axes else array


def rotation_matrix(angles_degrees: Sequence[float]) -> np.ndarray:
    """2D: one angle; 3D: three angles, applied about spatial axes 0, 1 and 2 in turn."""
    radians = np.deg2rad(np.asarray(angles_degrees, dtype=np.float64))
    if radians.size == 1:
        c, s = np.cos(radians[0]), np.sin(radians[0])
        return np.array([[c, -s], [s, c]])
    matrix = np.eye(3)
    for axis, angle in enumerate(radians):
        i, j = [a for a in range(3) if a != axis]
        plane = np.eye(3)
        plane[[i, i, j, j], [i, j, i, j]] = [np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)]
        matrix = plane @ matrix
    return matrix


def affine_resample(array: np.ndarray, matrix: np.ndarray, order: int, mode: str = "mirror") -> np.ndarray:
    """Resample with output voxel o read from input c + matrix @ (o - c), c = centre of the grid."""
    spatial_dims = matrix.shape[0]
    centre = (np.asarray(array.shape[-spatial_dims:], dtype=np.float64) - 1.0) / 2.0
    offset = centre - matrix @ centre
    return map_leading(
        array,
        spatial_dims,
        lambda block: ndimage.affine_transform(block, matrix, offset=offset, order=order, mode=mode),
    )


class RandomFlip(RandomTransform):
    """Mirror each of `axes` (default: all spatial axes) independently with probability `p`."""

    def __init__(self, spatial_dims: int, axes: Sequence[int] | None = None, p: float = 0.5,
                 image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, 1.0, image_keys, label_keys)
        self.axes = tuple(range(spatial_dims)) if axes is None else tuple(axes)
        if any(not 0 <= a < spatial_dims for a in self.axes):
            raise InputError(f"axes={self.axes}: expected spatial axes in 0..{spatial_dims - 1}")
        self.axis_p = check_probability(p)

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        chosen = [a for a in self.axes if rng.random() < self.axis_p]
        for key, _ in self.keys_with_order(sample):
            sample[key] = flip(np.asarray(sample[key]), chosen, self.spatial_dims)
        return sample


class RandomRot90(RandomTransform):
    """Rotate by k * 90 degrees (k uniform in 1..3) in the plane of two spatial axes; exact, no resampling."""

    def __init__(self, spatial_dims: int, plane: tuple[int, int] = (0, 1), p: float = 0.5,
                 image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, p, image_keys, label_keys)
        if len(set(plane)) != 2 or any(not 0 <= a < spatial_dims for a in plane):
            raise InputError(f"plane={plane}: expected two different spatial axes in 0..{spatial_dims - 1}")
        self.plane = tuple(plane)

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        k = int(rng.integers(1, 4))
        axes = tuple(a - self.spatial_dims for a in self.plane)
        for key, _ in self.keys_with_order(sample):
            sample[key] = np.rot90(np.asarray(sample[key]), k, axes=axes)
        return sample


class _RandomAffine(RandomTransform):
    """Shared resampling of the rotation and scaling transforms."""

    mode = "mirror"

    def draw_matrix(self, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        self.spatial_shape(sample)
        matrix = self.draw_matrix(rng)
        for key, order in self.keys_with_order(sample):
            array = as_float_image(sample[key]) if order == IMAGE_ORDER else np.asarray(sample[key])
            sample[key] = affine_resample(array, matrix, order, self.mode)
        return sample


class RandomRotate(_RandomAffine):
    """Rotate by angles uniform in (-max_degrees, max_degrees): one angle in 2D, one per axis in 3D."""

    def __init__(self, spatial_dims: int, max_degrees: float = NNUNET_ROTATION_DEGREES, p: float = 0.2,
                 mode: str = "mirror", image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, p, image_keys, label_keys)
        if not 0 <= max_degrees <= 180:
            raise InputError(f"max_degrees={max_degrees}: expected an angle in [0, 180]")
        self.max_degrees = float(max_degrees)
        self.mode = mode

    def draw_matrix(self, rng: np.random.Generator) -> np.ndarray:
        count = 1 if self.spatial_dims == 2 else 3
        return rotation_matrix(rng.uniform(-self.max_degrees, self.max_degrees, size=count))


class RandomScale(_RandomAffine):
    """Isotropic zoom by a factor uniform in `scale_range` (> 1 enlarges the content), same output shape."""

    def __init__(self, spatial_dims: int, scale_range: Sequence[float] = NNUNET_SCALE_RANGE, p: float = 0.2,
                 mode: str = "mirror", image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, p, image_keys, label_keys)
        self.scale_range = check_range(scale_range, "scale_range")
        if self.scale_range[0] <= 0:
            raise InputError(f"scale_range={tuple(scale_range)}: expected positive factors")
        self.mode = mode

    def draw_matrix(self, rng: np.random.Generator) -> np.ndarray:
        return np.eye(self.spatial_dims) / rng.uniform(*self.scale_range)


class RandomShift(RandomTransform):
    """Translate by up to `max_shift` whole pixels per spatial axis (uniform integers), the border replicated;
    exact, no resampling (small shifts of the field of view, as for centred MedMNIST images)."""

    def __init__(self, spatial_dims: int, max_shift: int = 2, p: float = 1.0, image_keys=("image",),
                 label_keys=("label",)):
        super().__init__(spatial_dims, p, image_keys, label_keys)
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise InputError(f"max_shift={max_shift!r}: expected a non-negative whole number of pixels")
        self.max_shift = max_shift

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        shape = self.spatial_shape(sample)
        shifts = [int(v) for v in rng.integers(-self.max_shift, self.max_shift + 1, size=self.spatial_dims)]
        m = self.max_shift
        window = tuple(slice(m + d, m + d + n) for d, n in zip(shifts, shape))
        for key, _ in self.keys_with_order(sample):
            array = np.asarray(sample[key])
            lead = array.ndim - self.spatial_dims
            padded = np.pad(array, [(0, 0)] * lead + [(m, m)] * self.spatial_dims, mode="edge")
            sample[key] = padded[(Ellipsis, *window)]
        return sample
