"""The U-Net paper's elastic deformation, in 2D and 3D.

Ronneberger et al. 2015 (U-Net, MICCAI), section 3.1: "We generate smooth deformations using random
displacement vectors on a coarse 3 by 3 grid. The displacements are sampled from a Gaussian
distribution with 10 pixels standard deviation. Per-pixel displacements are then computed using
bicubic interpolation." Those are the defaults here (`grid_size=3`, `sigma=10.0`); in 3D the grid is
3x3x3 (as in 3D U-Net, Cicek et al. 2016). The dense field is the tensor product of 1D cubic-spline
interpolations of the coarse grid, whose corner nodes sit on the corner pixels. Images are resampled
with cubic splines (order 3), labels with nearest neighbour (order 0); outside the image we mirror,
like the paper's overlap-tile strategy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ._base import IMAGE_ORDER, RandomTransform, as_float_image, map_leading

UNET_GRID_SIZE = 3
UNET_SIGMA = 10.0


def coarse_displacements(
    spatial_dims: int, rng: np.random.Generator, grid_size: int = UNET_GRID_SIZE, sigma: float = UNET_SIGMA
) -> np.ndarray:
    """Random displacement vectors (in pixels) on the coarse grid: shape (spatial_dims, g, g[, g])."""
    if grid_size < 2:
        raise InputError(f"grid_size={grid_size}: expected at least 2 nodes per axis")
    if sigma < 0:
        raise InputError(f"sigma={sigma}: expected a non-negative standard deviation in pixels")
    return rng.normal(0.0, sigma, size=(spatial_dims,) + (grid_size,) * spatial_dims)


def _interpolation_matrix(grid_size: int, length: int) -> np.ndarray:
    """(length, grid_size) weights of 1D cubic-spline interpolation from the grid nodes to each pixel."""
    positions = np.linspace(0.0, grid_size - 1, length)[None, :]
    columns = [
        ndimage.map_coordinates(np.eye(grid_size)[j], positions, order=3, mode="mirror")
        for j in range(grid_size)
    ]
    return np.stack(columns, axis=1)


def dense_displacement_field(coarse: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Per-pixel displacements (spatial_dims, *shape) from the coarse grid by cubic interpolation."""
    spatial_dims = coarse.shape[0]
    if len(shape) != spatial_dims:
        raise InputError(f"shape={tuple(shape)}: expected {spatial_dims} spatial sizes to match the grid")
    matrices = [_interpolation_matrix(g, n) for g, n in zip(coarse.shape[1:], shape)]
    field = coarse
    for axis, matrix in enumerate(matrices):
        # Contract grid axis (axis + 1) with the (length, grid) matrix, keep the axis in place.
        field = np.moveaxis(np.tensordot(field, matrix, axes=([axis + 1], [1])), -1, axis + 1)
    return field


def warp(array: np.ndarray, displacement: np.ndarray, order: int) -> np.ndarray:
    """Resample `array` (leading channel axes allowed) at x + displacement(x), mirror boundary."""
    spatial_dims = displacement.shape[0]
    shape = displacement.shape[1:]
    if array.shape[array.ndim - spatial_dims :] != shape:
        raise InputError(f"array spatial shape {array.shape[-spatial_dims:]} != displacement shape {shape}")
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    coords = np.stack(grid) + displacement
    return map_leading(
        array, spatial_dims, lambda block: ndimage.map_coordinates(block, coords, order=order, mode="mirror")
    )


def elastic_deform(
    arrays: Sequence[np.ndarray],
    orders: Sequence[int],
    spatial_dims: int,
    rng: np.random.Generator,
    grid_size: int = UNET_GRID_SIZE,
    sigma: float = UNET_SIGMA,
) -> list[np.ndarray]:
    """Deform several arrays (e.g. image order 3, label order 0) with one random field."""
    shape = np.asarray(arrays[0]).shape[-spatial_dims:]
    field = dense_displacement_field(coarse_displacements(spatial_dims, rng, grid_size, sigma), shape)
    return [warp(np.asarray(a), field, order) for a, order in zip(arrays, orders)]


class RandomElastic(RandomTransform):
    """U-Net elastic deformation of every image (order 3) and label (order 0) key of a sample."""

    def __init__(self, spatial_dims: int, sigma: float = UNET_SIGMA, grid_size: int = UNET_GRID_SIZE, p: float = 1.0,
                 image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, p, image_keys, label_keys)
        if sigma < 0:
            raise InputError(f"sigma={sigma}: expected a non-negative standard deviation in pixels")
        self.sigma = float(sigma)
        self.grid_size = int(grid_size)

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        shape = self.spatial_shape(sample)
        coarse = coarse_displacements(self.spatial_dims, rng, self.grid_size, self.sigma)
        field = dense_displacement_field(coarse, shape)
        for key, order in self.keys_with_order(sample):
            array = as_float_image(sample[key]) if order == IMAGE_ORDER else np.asarray(sample[key])
            sample[key] = warp(array, field, order)
        return sample
