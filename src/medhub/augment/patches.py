"""Patch sampling with a foreground/background ratio, as DeepMedic trains.

Kamnitsas et al. 2017 (DeepMedic, Medical Image Analysis 36), section 2.2: training segments are
sampled so that half are centred on foreground (lesion) voxels and half on background voxels inside
the brain mask ("50% of the segments centred on foreground and 50% on background"), which corrects
the class imbalance without weighting the loss. The network reads a larger input segment
(25^3 for the normal pathway, more for the context pathway) and predicts the central 9^3 voxels, so
`sample_patches` returns the image patch, an optional larger context patch and the label patch at the
output size, all centred on the same voxel. A patch of even size s puts its centre at index s // 2.
Near the border patches are padded with `pad_value` (image; DeepMedic pads z-scored channels with 0,
the mean) and 0 (label, background).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ._base import RandomTransform, check_probability

DEEPMEDIC_FG_FRACTION = 0.5


class CentreSampler:
    """The foreground (label > 0) and background (label == 0) voxels of one volume, inside `mask`.

    Finding them scans the whole volume (tens of ms for a BraTS volume), so build one sampler per
    volume and draw from it many times.
    """

    def __init__(self, label: np.ndarray, mask: np.ndarray | None = None):
        label = np.asarray(label)
        roi = np.ones(label.shape, dtype=bool) if mask is None else np.asarray(mask) > 0
        if roi.shape != label.shape:
            raise InputError(f"mask shape {roi.shape} != label shape {label.shape}; expected the same grid")
        self.shape = label.shape
        self.foreground = np.flatnonzero((label > 0) & roi)
        self.background = np.flatnonzero((label == 0) & roi)
        if self.foreground.size == 0 and self.background.size == 0:
            raise InputError("mask is empty: no voxel to centre a patch on (expected a non-empty ROI)")

    def sample(
        self, num: int, rng: np.random.Generator, fg_fraction: float = DEEPMEDIC_FG_FRACTION
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw `num` centres, about `fg_fraction` of them foreground (see `sample_centres`)."""
        fg_fraction = check_probability(fg_fraction, "fg_fraction")
        if num < 1:
            raise InputError(f"num={num}: expected at least one patch")
        whole, remainder = divmod(num * fg_fraction, 1.0)
        num_fg = int(whole) + int(rng.random() < remainder)
        if self.foreground.size == 0:
            num_fg = 0
        elif self.background.size == 0:
            num_fg = num
        is_foreground = np.zeros(num, dtype=bool)
        is_foreground[:num_fg] = True
        rng.shuffle(is_foreground)
        flat = np.empty(num, dtype=np.int64)
        if num_fg:
            flat[is_foreground] = self.foreground[rng.integers(0, self.foreground.size, size=num_fg)]
        if num - num_fg:
            flat[~is_foreground] = self.background[rng.integers(0, self.background.size, size=num - num_fg)]
        centres = np.stack(np.unravel_index(flat, self.shape), axis=1).astype(np.int64)
        return centres, is_foreground


def sample_centres(
    label: np.ndarray,
    num: int,
    rng: np.random.Generator,
    fg_fraction: float = DEEPMEDIC_FG_FRACTION,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw `num` patch centres: about `fg_fraction` of them on label > 0, the rest on label == 0.

    Both categories are restricted to `mask` (e.g. the brain mask) when given. The foreground count is
    floor(num * fg_fraction) plus one more with the probability of the remainder, so the ratio is
    exact when num * fg_fraction is whole and unbiased otherwise (num=1 draws foreground with
    probability fg_fraction). When one category is empty (a volume without lesion) all centres come
    from the other; `is_foreground` reports what was drawn. Returns (centres (num, ndim) int64,
    is_foreground (num,) bool), in random order.
    """
    return CentreSampler(label, mask).sample(num, rng, fg_fraction)


def extract_patch(array: np.ndarray, centre: Sequence[int], size: Sequence[int], pad_value: float = 0) -> np.ndarray:
    """The patch of `size` around `centre` over the last len(size) axes, padded with `pad_value` outside."""
    array = np.asarray(array)
    spatial_dims = len(size)
    shape = array.shape[array.ndim - spatial_dims :]
    if len(centre) != spatial_dims or array.ndim < spatial_dims:
        raise InputError(f"centre {tuple(centre)} / size {tuple(size)} do not fit an array of shape {array.shape}")
    if any(s < 1 for s in size):
        raise InputError(f"patch size {tuple(size)}: expected positive sizes")
    starts = [int(c) - s // 2 for c, s in zip(centre, size)]
    source, pads = [], []
    for start, s, n in zip(starts, size, shape):
        lo, hi = max(start, 0), min(start + s, n)
        source.append(slice(lo, max(hi, lo)))
        pads.append((lo - start, s - max(hi - lo, 0) - (lo - start)))
    lead = array.ndim - spatial_dims
    block = array[(Ellipsis,) + tuple(source)]
    if all(p == (0, 0) for p in pads):
        return block.copy()
    return np.pad(block, [(0, 0)] * lead + pads, mode="constant", constant_values=pad_value)


def sample_patches(
    image: np.ndarray,
    label: np.ndarray,
    patch_size: Sequence[int],
    rng: np.random.Generator,
    *,
    num_patches: int = 1,
    label_size: Sequence[int] | None = None,
    context_size: Sequence[int] | None = None,
    fg_fraction: float = DEEPMEDIC_FG_FRACTION,
    mask: np.ndarray | None = None,
    pad_value: float = 0.0,
) -> dict[str, np.ndarray]:
    """Sample `num_patches` patches centred half on foreground, half on background (DeepMedic).

    image: (*lead, *spatial) with any leading channel axes; label and mask: (*spatial).
    Returns {"image": (n, *lead, *patch_size), "label": (n, *label_size), "centres": (n, ndim),
    "is_foreground": (n,)} plus "context": (n, *lead, *context_size) when `context_size` is given.
    """
    image, label = np.asarray(image), np.asarray(label)
    spatial_dims = len(patch_size)
    if label.ndim != spatial_dims or image.shape[image.ndim - spatial_dims :] != label.shape:
        raise InputError(
            f"image {image.shape} / label {label.shape}: expected a label of {spatial_dims} spatial axes "
            f"matching the last {spatial_dims} axes of the image (patch_size={tuple(patch_size)})"
        )
    label_size = tuple(patch_size) if label_size is None else tuple(label_size)
    for name, size in (("label_size", label_size), ("context_size", context_size)):
        if size is not None and len(size) != spatial_dims:
            raise InputError(f"{name}={tuple(size)}: expected {spatial_dims} sizes like patch_size")
    centres, is_foreground = sample_centres(label, num_patches, rng, fg_fraction, mask)
    out = {
        "image": np.stack([extract_patch(image, c, patch_size, pad_value) for c in centres]),
        "label": np.stack([extract_patch(label, c, label_size, 0) for c in centres]),
        "centres": centres,
        "is_foreground": is_foreground,
    }
    if context_size is not None:
        out["context"] = np.stack([extract_patch(image, c, context_size, pad_value) for c in centres])
    return out


class RandomPatch:
    """Compose step: replace a sample's image/label by one DeepMedic-style patch (see `sample_patches`).

    The mask key (when present) chooses the background region and is cropped like the label.
    """

    def __init__(self, patch_size: Sequence[int], label_size: Sequence[int] | None = None,
                 context_size: Sequence[int] | None = None, fg_fraction: float = DEEPMEDIC_FG_FRACTION,
                 pad_value: float = 0.0, image_key: str = "image", label_key: str = "label",
                 mask_key: str = "mask", context_key: str = "context"):
        self.patch_size = tuple(int(s) for s in patch_size)
        self.label_size = self.patch_size if label_size is None else tuple(int(s) for s in label_size)
        self.context_size = None if context_size is None else tuple(int(s) for s in context_size)
        self.fg_fraction = check_probability(fg_fraction, "fg_fraction")
        self.pad_value = pad_value
        self.image_key, self.label_key, self.mask_key, self.context_key = image_key, label_key, mask_key, context_key

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for key in (self.image_key, self.label_key):
            if key not in sample:
                raise InputError(f"RandomPatch needs sample[{key!r}]; the sample has {list(sample)}")
        mask = sample.get(self.mask_key)
        patches = sample_patches(
            sample[self.image_key], sample[self.label_key], self.patch_size, rng,
            label_size=self.label_size, context_size=self.context_size, fg_fraction=self.fg_fraction,
            mask=mask, pad_value=self.pad_value,
        )
        out = dict(sample)
        out[self.image_key] = patches["image"][0]
        out[self.label_key] = patches["label"][0]
        if mask is not None:
            out[self.mask_key] = extract_patch(mask, patches["centres"][0], self.label_size, 0)
        if self.context_size is not None:
            out[self.context_key] = patches["context"][0]
        return out


class RandomCrop(RandomTransform):
    """A random `size` window (uniform position) of every image and label key of a sample, e.g. 256x256 crops
    of 512x512 EM slices for training; an image smaller than `size` is an error."""

    def __init__(self, spatial_dims: int, size: Sequence[int], image_keys=("image",), label_keys=("label",)):
        super().__init__(spatial_dims, 1.0, image_keys, label_keys)
        size = tuple(int(s) for s in size)
        if len(size) != spatial_dims or min(size) < 1:
            raise InputError(f"size={size}: expected {spatial_dims} positive sizes")
        self.size = size

    def apply(self, sample: dict, rng: np.random.Generator) -> dict:
        shape = self.spatial_shape(sample)
        if any(s < c for s, c in zip(shape, self.size)):
            raise InputError(f"RandomCrop {self.size}: image of spatial size {shape} is smaller")
        starts = [int(rng.integers(0, s - c + 1)) for s, c in zip(shape, self.size)]
        window = tuple(slice(a, a + c) for a, c in zip(starts, self.size))
        for key, _ in self.keys_with_order(sample):
            sample[key] = np.asarray(sample[key])[(Ellipsis, *window)]
        return sample
