"""The one place where training meets `medhub.data`, the model's processor and `medhub.augment`.

`load_split(data, split, model=model, seed=..., train=...)` returns the rows a Trainer sees for a recipe's `data:`
section, each {"pixel_values", "labels"[, "weight_map"]}:

1. the split of `medhub.data.load(name or path, split, **options)`, optionally limited (`limit_train` /
   `limit_eval`, after a seeded shuffle unless `shuffle_before_limit: false`) and centre-cropped (`crop`);
2. segmentation: label values mapped to class indices (`label_values`, e.g. {255: 1}) and, on the train split,
   the U-Net paper's weight map of every label map (`weight_map: {w0, sigma, class_balance}`);
3. the image through the model's processor - the one saved with the weights, so training sees exactly what
   `medhub predict` feeds the model;
4. train split only: `augment`, a list of `medhub.augment` transforms applied to the processed image and its
   label / weight maps alike. Short names: crop (RandomCrop), flip, rot90, shift, elastic, rotate, scale, gamma,
   noise, scale_shift, invert; or any `medhub.augment` class name; `spatial_dims` and the keys are filled in.

3D recipes (`patches:`) draw patches from whole processed volumes instead (`medhub.training.patches3d`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import augment
from ..data.recipe_data import load_rows, map_label_values
from ..errors import ConfigError, InputError
from ..losses.unet_weight_map import instances_from_mask, unet_weight_map
from .patches3d import load_patch_split

SPLIT_ALIASES = {"val": "validation", "valid": "validation", "eval": "validation"}
IMAGE_KEYS = ("image", "pixel_values")
TARGET_KEYS = ("mask", "label", "labels")
AUGMENT_NAMES = {"crop": "RandomCrop", "flip": "RandomFlip", "rot90": "RandomRot90", "shift": "RandomShift",
                 "elastic": "RandomElastic", "rotate": "RandomRotate", "scale": "RandomScale", "gamma": "RandomGamma",
                 "noise": "RandomGaussianNoise", "scale_shift": "RandomScaleShift",
                 "invert": "RandomInvert"}


def load_split(data: dict[str, Any], split: str, *, model, seed: int = 0, train: bool = False):
    """The `split` of the recipe's dataset as model-ready rows (see the module docstring)."""
    name = data.get("name") or data.get("path")
    if not name:
        raise ConfigError("recipe data: expected `name` (a medhub.data name) or `path` (a folder)")
    split = SPLIT_ALIASES.get(split, split)
    if data.get("patches"):
        return load_patch_split(data, split, seed=seed, train=train, processor=model.image_processor)
    dataset = load_rows(data, split, seed=seed, train=train)
    image_key = _column(dataset, IMAGE_KEYS, "image")
    segmentation = model.pipeline_tag == "image-segmentation"
    target_key = _column(dataset, TARGET_KEYS, "label", required=False)
    label_values = _label_values(data.get("label_values"))
    steps: list[Callable[[dict], dict]] = []
    if data.get("crop"):
        steps.append(center_crop(tuple(int(s) for s in data["crop"]), (image_key, target_key, "weight_map")))
    if train and segmentation and data.get("weight_map") and target_key:
        dataset = with_weight_maps(dataset, target_key, label_values, data["weight_map"])
    steps.append(process_rows(model.image_processor, image_key, target_key, label_values if segmentation else None))
    if train and data.get("augment"):
        label_keys = ("labels", "weight_map") if segmentation else ()
        transforms = build_augmentation(data["augment"], model.spatial_dims, label_keys)
        steps.append(augment.as_batch_transform(augment.Compose(transforms, seed=seed)))
    return dataset.with_transform(_compose(steps))


def _column(dataset, keys: tuple[str, ...], what: str, required: bool = True) -> str | None:
    for key in keys:
        if key in dataset.column_names:
            return key
    if required:
        raise InputError(f"dataset columns {dataset.column_names}: no {what} column (expected one of {list(keys)})")
    return None


def _label_values(mapping: Mapping | None) -> dict[int, int] | None:
    return {int(k): int(v) for k, v in mapping.items()} if mapping else None


def process_rows(processor, image_key: str, target_key: str | None, label_values: dict[int, int] | None):
    """Batch transform: image -> processor -> "pixel_values" (C, H, W); segmentation labels mapped to class
    indices ("labels"); classification targets passed on as "labels"; a "weight_map" column kept."""

    def transform(batch: dict) -> dict:
        out: dict[str, list] = {"pixel_values": []}
        for image in batch[image_key]:
            out["pixel_values"].append(processor(image, return_tensors="np")["pixel_values"][0])
        if target_key is not None and target_key in batch:
            if label_values is not None or target_key == "mask":
                out["labels"] = [map_label_values(np.asarray(t), label_values) for t in batch[target_key]]
            else:
                out["labels"] = list(batch[target_key])
        if "weight_map" in batch:
            out["weight_map"] = [np.asarray(w, dtype=np.float32) for w in batch["weight_map"]]
        return out

    return transform


def with_weight_maps(dataset, target_key: str, label_values: dict[int, int] | None, options: Mapping):
    """Add the U-Net paper's weight map of every (whole) label map as a `weight_map` column."""
    options = dict(options)
    maps = []
    for row in dataset:
        label = map_label_values(np.asarray(row[target_key]), label_values)
        instances = instances_from_mask(label > 0)
        # class_balance: false drops the paper's class-frequency term w_c (w_c = 1): the border term alone.
        classes = None if options.get("class_balance", True) else np.zeros_like(instances)
        maps.append(unet_weight_map(instances, w0=float(options.get("w0", 10.0)),
                                    sigma=float(options.get("sigma", 5.0)), classes=classes))
    return dataset.add_column("weight_map", [m.tolist() for m in maps])


def build_augmentation(specs: list[dict[str, Any]], spatial_dims: int, label_keys: tuple[str, ...]) -> list:
    """`[{name: flip, ...kwargs}, ...]` -> `medhub.augment` transforms on "pixel_values" and `label_keys`."""
    steps = []
    for spec in specs:
        spec = dict(spec)
        kind = str(spec.pop("name", ""))
        factory = getattr(augment, AUGMENT_NAMES.get(kind, kind), None)
        if not isinstance(factory, type) or not issubclass(factory, augment.RandomTransform):
            raise ConfigError(f"recipe data.augment: unknown step {kind!r}; expected one of {sorted(AUGMENT_NAMES)} "
                              "or a medhub.augment transform class")
        # intensity transforms never touch labels and take no label_keys
        keys = {"label_keys": label_keys} if "label_keys" in inspect.signature(factory).parameters else {}
        try:
            steps.append(factory(spatial_dims, image_keys=("pixel_values",), **keys, **spec))
        except TypeError as err:
            raise ConfigError(f"recipe data.augment {kind!r}: {err}") from None
    return steps


def center_crop(size: tuple[int, ...], keys: tuple[str | None, ...]) -> Callable[[dict], dict]:
    """A batch transform cropping the centre `size` of the image, target and weight map columns."""

    def crop(batch: dict) -> dict:
        out = dict(batch)
        for key in keys:
            if key in batch and batch[key] is not None:
                out[key] = [_crop(np.asarray(x), size, key) for x in batch[key]]
        return out

    return crop


def _crop(array: np.ndarray, size: tuple[int, ...], key: str) -> np.ndarray:
    # (H, W, C) as PIL / numpy store colour images: the spatial axes come first
    channels_last = array.ndim == len(size) + 1 and array.shape[-1] in (3, 4) and array.shape[0] not in (1, 3, 4)
    spatial = array.shape[:len(size)] if channels_last else array.shape[-len(size):]
    if any(s < c for s, c in zip(spatial, size)):
        raise InputError(f"crop {size}: {key} of spatial size {spatial} is smaller than the crop")
    window = tuple(slice((s - c) // 2, (s - c) // 2 + c) for s, c in zip(spatial, size))
    return array[window] if channels_last else array[(Ellipsis, *window)]


def _compose(steps: list[Callable[[dict], dict]]) -> Callable[[dict], dict]:
    def run(batch: dict) -> dict:
        for step in steps:
            batch = step(batch)
        return batch

    return run


__all__ = ["SPLIT_ALIASES", "build_augmentation", "center_crop", "load_split", "process_rows", "with_weight_maps"]
