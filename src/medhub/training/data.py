"""The one place where training meets `medhub.data` and `medhub.augment`.

`load_split(data, split, seed)` returns a `datasets.Dataset` for a recipe's `data:` section:

    data:
      name: isbi2012            # a medhub.data.load name or a folder
      train_split: train
      eval_split: validation
      options: {val_slices: 4}  # the loader's own options (medhub.data.load(name, split, **options))
      limit_train: 64           # optional: the first N examples (after a seeded shuffle when shuffle: true)
      limit_eval: 32
      crop: [128, 128]          # optional: centre crop of image and label map (2D or 3D)
      transforms: [...]         # optional: medhub.augment transforms, see `build_transforms`
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from datasets import Dataset

from ..errors import ConfigError, InputError

SPLIT_ALIASES = {"val": "validation", "valid": "validation", "eval": "validation"}


def load_split(data: dict[str, Any], split: str, seed: int = 0, train: bool = False) -> Dataset:
    """The `split` of the recipe's dataset, limited, cropped and transformed as the recipe says."""
    name = data.get("name") or data.get("path")
    if not name:
        raise ConfigError("recipe data: expected `name` (a medhub.data name) or `path` (a folder)")
    split = SPLIT_ALIASES.get(split, split)
    if data.get("patches"):  # 3D: patches drawn from whole volumes (see training/patches3d.py)
        from .patches3d import load_patch_split

        return load_patch_split(data, split, seed=seed, train=train)
    dataset = _load(str(name), split, dict(data.get("options") or {}))
    limit = data.get("limit_train" if train else "limit_eval")
    if limit is not None:
        if data.get("shuffle_before_limit", True):
            dataset = dataset.shuffle(seed=seed)
        dataset = dataset.select(range(min(int(limit), len(dataset))))
    steps = []
    if data.get("crop"):
        steps.append(center_crop(tuple(int(s) for s in data["crop"])))
    steps += build_transforms(data.get("transforms") or [], train=train, seed=seed)
    if steps:
        dataset = dataset.with_transform(_compose(steps))
    return dataset


def _load(name: str, split: str, options: dict[str, Any]) -> Dataset:
    from ..data import load

    dataset = load(name, split=split, **options)
    if not isinstance(dataset, Dataset):
        raise ConfigError(f"recipe data: {name!r} split {split!r} loaded as {type(dataset).__name__}; "
                          "training needs a map-style datasets.Dataset (streaming is not supported here)")
    return dataset


def build_transforms(specs: list[dict[str, Any]], train: bool, seed: int) -> list[Callable]:
    """`[{name: elastic, ...kwargs}, ...]` -> batch transforms from `medhub.augment` (train split only unless
    a spec says `eval: true`)."""
    if not specs:
        return []
    try:
        from .. import augment
    except ImportError as err:
        raise ConfigError(f"recipe data.transforms needs medhub.augment, which cannot be imported ({err})") from None
    steps = []
    for spec in specs:
        spec = dict(spec)
        kind = spec.pop("name", None)
        on_eval = spec.pop("eval", False)
        if not train and not on_eval:
            continue
        factory = getattr(augment, str(kind), None)
        if not callable(factory):
            raise ConfigError(f"recipe data.transforms: unknown transform {kind!r}; medhub.augment has "
                              f"{sorted(n for n in dir(augment) if not n.startswith('_'))}")
        steps.append(factory(**spec))
    return steps


def center_crop(size: tuple[int, ...]) -> Callable[[dict], dict]:
    """A batch transform cropping the centre `size` of `image`/`pixel_values` and `label`/`labels` maps."""

    def crop(batch: dict) -> dict:
        out = dict(batch)
        for key in ("image", "pixel_values", "label", "labels", "mask", "weight_map"):
            if key in batch and batch[key] is not None and not _is_scalar_column(batch[key]):
                out[key] = [_crop(np.asarray(x), size, key) for x in batch[key]]
        return out

    return crop


def _is_scalar_column(column) -> bool:
    return len(column) > 0 and np.ndim(np.asarray(column[0])) <= 1


def _crop(array: np.ndarray, size: tuple[int, ...], key: str) -> np.ndarray:
    spatial = array.shape[-len(size):] if array.ndim == len(size) or key.startswith("label") or key == "mask" else None
    if spatial is None:  # channel axis present: first for (C, *spatial), last for PIL-like (H, W, C)
        channels_last = array.ndim == len(size) + 1 and array.shape[-1] in (3, 4) and array.shape[0] not in (1, 3, 4)
        spatial = array.shape[:len(size)] if channels_last else array.shape[-len(size):]
    if any(s < c for s, c in zip(spatial, size)):
        raise InputError(f"crop {size}: {key} of spatial size {spatial} is smaller than the crop")
    starts = [(s - c) // 2 for s, c in zip(spatial, size)]
    window = tuple(slice(a, a + c) for a, c in zip(starts, size))
    if array.ndim == len(size):
        return array[window]
    if array.shape[:len(size)] == tuple(spatial) and array.shape[-len(size):] != tuple(spatial):
        return array[window]
    return array[(Ellipsis, *window)]


def _compose(steps: list[Callable]) -> Callable[[dict], dict]:
    def run(batch: dict) -> dict:
        for step in steps:
            batch = step(batch)
        return batch

    return run
