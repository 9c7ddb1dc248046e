"""What every random transform shares: a sample dict, image vs label keys, a probability, a seed.

A *sample* is a dict of numpy arrays. The last `spatial_dims` axes of every transformed array are
spatial; any leading axes (channels) are carried along, so an image `(C, H, W)` and a label `(H, W)`
move together. Image keys are resampled with cubic splines (order 3) and get intensity transforms;
label keys are resampled with nearest neighbour (order 0) so they keep their set of values.
Randomness always comes from a `numpy.random.Generator` passed in, so a seed fixes the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError

IMAGE_ORDER = 3
LABEL_ORDER = 0


def check_probability(p: float, name: str = "p") -> float:
    if not 0.0 <= p <= 1.0:
        raise InputError(f"{name}={p!r}: expected a probability in [0, 1]")
    return float(p)


def check_spatial_dims(spatial_dims: int) -> int:
    if spatial_dims not in (2, 3):
        raise InputError(f"spatial_dims={spatial_dims!r}: expected 2 or 3")
    return spatial_dims


def check_range(value: Sequence[float], name: str) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if low > high:
        raise InputError(f"{name}={tuple(value)!r}: expected (low, high) with low <= high")
    return low, high


class RandomTransform:
    """Base class: applies `apply(sample, rng)` with probability `p` to the keys it names.

    Subclasses draw their parameters once per call (so image and label get the *same* draw) and
    implement `apply`. `__call__` returns a new dict; the input sample is not modified.
    """

    def __init__(
        self,
        spatial_dims: int,
        p: float = 1.0,
        image_keys: Sequence[str] = ("image",),
        label_keys: Sequence[str] = ("label",),
    ):
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.p = check_probability(p)
        self.image_keys = tuple(image_keys)
        self.label_keys = tuple(label_keys)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        out = dict(sample)
        if self.p < 1.0 and rng.random() >= self.p:
            return out
        return self.apply(out, rng)

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def spatial_shape(self, sample: dict) -> tuple[int, ...]:
        """The common spatial shape of the keys present; differing shapes are an input error."""
        shapes = {}
        for key in self.image_keys + self.label_keys:
            if key in sample:
                array = np.asarray(sample[key])
                if array.ndim < self.spatial_dims:
                    raise InputError(
                        f"sample[{key!r}] has shape {array.shape}: expected at least "
                        f"{self.spatial_dims} spatial axes (spatial_dims={self.spatial_dims})"
                    )
                shapes[key] = array.shape[array.ndim - self.spatial_dims :]
        if not shapes:
            raise InputError(f"sample has none of the keys {self.image_keys + self.label_keys}; has {list(sample)}")
        if len(set(shapes.values())) > 1:
            raise InputError(f"image and label spatial shapes differ: {shapes}; expected one shape")
        return next(iter(shapes.values()))

    def keys_with_order(self, sample: dict):
        """(key, interpolation order) for each image/label key present in the sample."""
        for key in self.image_keys:
            if key in sample:
                yield key, IMAGE_ORDER
        for key in self.label_keys:
            if key in sample:
                yield key, LABEL_ORDER


def as_float_image(array) -> np.ndarray:
    """Images are resampled and intensity-transformed in float32 (uint8 would clip and round)."""
    array = np.asarray(array)
    return array.astype(np.float32, copy=False) if array.dtype != np.float64 else array


def map_leading(array: np.ndarray, spatial_dims: int, fn) -> np.ndarray:
    """Apply `fn` to each spatial block of `array` (all leading/channel axes looped over)."""
    lead = array.shape[: array.ndim - spatial_dims]
    if not lead:
        return fn(array)
    flat = array.reshape((-1,) + array.shape[len(lead) :])
    out = np.stack([fn(block) for block in flat])
    return out.reshape(lead + out.shape[1:])
