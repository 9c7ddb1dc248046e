"""On-the-fly data augmentation in 2D and 3D: image and label transformed consistently.

Samples are dicts of numpy arrays ("image" resampled with order 3 and intensity-augmented, "label"
with order 0); randomness comes from a seeded `numpy.random.Generator`. See each module for the
paper behind its default parameters.
"""

from ._base import RandomTransform
from .compose import Compose, as_batch_transform
from .elastic import RandomElastic, coarse_displacements, dense_displacement_field, elastic_deform, warp
from .intensity import RandomGamma, RandomGaussianNoise, RandomInvert, RandomScaleShift, gamma_transform
from .patches import CentreSampler, RandomCrop, RandomPatch, extract_patch, sample_centres, sample_patches
from .spatial import (
                      RandomFlip,
                      RandomRot90,
                      RandomRotate,
                      RandomScale,
                      RandomShift,
                      affine_resample,
                      flip,
                      rotation_matrix,
)

__all__ = [
    "RandomTransform",
    "Compose",
    "as_batch_transform",
    "RandomElastic",
    "coarse_displacements",
    "dense_displacement_field",
    "elastic_deform",
    "warp",
    "RandomGamma",
    "RandomGaussianNoise",
    "RandomInvert",
    "RandomScaleShift",
    "gamma_transform",
    "CentreSampler",
    "RandomCrop",
    "RandomPatch",
    "extract_patch",
    "sample_centres",
    "sample_patches",
    "RandomFlip",
    "RandomRot90",
    "RandomRotate",
    "RandomScale",
    "RandomShift",
    "affine_resample",
    "flip",
    "rotation_matrix",
]
