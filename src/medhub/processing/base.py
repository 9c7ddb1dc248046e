"""What every medhub image processor shares: an explicit, strict JSON schema and small 2D helpers.

We subclass `transformers.image_processing_utils.BaseImageProcessor` (AutoImageProcessor.register accepts
only its subclasses; save_pretrained/from_pretrained of `preprocessor_config.json` and Hub download come
from it) but none of its backends: the "fast" one needs torchvision and the PIL one imposes an RGB-first
pipeline, while medical images need windowing, inversion, volumes and channel names. We override
`preprocess`, `to_dict` and `from_dict`; the contract transformers' pipelines rely on is kept:
`processor(images, return_tensors="pt") -> BatchFeature` with "pixel_values".

Schema: the keyword arguments of the subclass `__init__` are the fields, saved verbatim (defaults
resolved, nothing implicit) together with `image_processor_type` = the class name, which is what
`medhub.auto.load_image_processor` dispatches on. Unknown keys in a JSON file are a `ConfigError`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

from ..errors import ConfigError, InputError
from ..weights_info import non_finite_path

RESAMPLE_MODES = ("bilinear", "area", "nearest")


class MedImageProcessor(BaseImageProcessor):
    """Base of medhub processors: fields = `__init__` keyword arguments; `check()` validates them."""

    model_input_names = ["pixel_values"]

    @classmethod
    def field_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in params if p.name != "self" and p.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        data = {name: _plain(getattr(self, name)) for name in self.field_names()}
        data["image_processor_type"] = type(self).__name__
        return data

    @classmethod
    def from_dict(cls, image_processor_dict: dict[str, Any], **kwargs):
        data = dict(image_processor_dict)
        bad = non_finite_path(data)
        if bad is not None:  # JSON's 1e999 parses to inf: `window_width: 1e999` would turn every pixel into NaN
            raise ConfigError(f"{cls.__name__}.{bad}: expected a finite number (NaN and infinity are refused)")
        kind = data.pop("image_processor_type", cls.__name__)
        data.pop("processor_class", None)
        data.pop("auto_map", None)  # where plain transformers finds this class in a Hub repo (medhub.remote_code)
        if kind != cls.__name__:
            raise ConfigError(f"image_processor_type {kind!r} cannot be loaded as a {cls.__name__}")
        fields = set(cls.field_names())
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; expected some of {sorted(fields)}")
        return_unused = kwargs.pop("return_unused_kwargs", False)
        data.update({k: kwargs.pop(k) for k in list(kwargs) if k in fields})
        processor = cls(**data)
        return (processor, kwargs) if return_unused else processor

    @classmethod
    def default_for(cls, config) -> MedImageProcessor | None:
        """The processor a model of `config` gets when its weights carry none (None: no sensible default)."""
        return cls()

    def __call__(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, return_tensors=return_tensors, **kwargs)

    def process_one(self, image: Any) -> np.ndarray:
        """Every step for one image: float32 (C, H, W) (2D processors implement it)."""
        raise NotImplementedError

    def preprocess(self, images: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        """One image or a list of images -> `pixel_values` (N, C, H, W); the images must end with one size."""
        if kwargs:
            raise InputError(f"{type(self).__name__}: unexpected argument(s) {sorted(kwargs)}")
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        if not batch:
            raise InputError(f"{type(self).__name__}: got an empty list of images")
        arrays = [self.process_one(image) for image in batch]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise InputError(f"{type(self).__name__}: images end with different sizes {sorted(shapes)}; "
                             "set do_resize=True or pass them one at a time")
        return self._batch_feature({"pixel_values": np.stack(arrays)}, return_tensors)

    @staticmethod
    def _batch_feature(data: dict[str, np.ndarray], return_tensors: str | None) -> BatchFeature:
        if return_tensors not in ("pt", "np", None):
            raise InputError(f"return_tensors={return_tensors!r}: expected 'pt', 'np' or None")
        return BatchFeature(data=data, tensor_type=return_tensors)


def _plain(value: Any) -> Any:
    """JSON-friendly copies (tuples -> lists, numpy scalars -> Python) so saved files round-trip exactly."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


# -- validation helpers ---------------------------------------------------------------------------------


def check_size(owner: str, field: str, size: Any, required: bool = True) -> dict[str, int] | None:
    """A size field is {"height": int, "width": int} (ints in 1..8192); an int n means n x n."""
    if size is None and not required:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = {"height": size, "width": size}
    ok = isinstance(size, dict) and set(size) == {"height", "width"} and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 8192 for v in size.values())
    if not ok:
        raise ConfigError(f"{owner}.{field}={size!r}: expected {{'height': int, 'width': int}} with values in 1..8192")
    return {"height": int(size["height"]), "width": int(size["width"])}


def check_stats(owner: str, field: str, values: Any, length: int, positive: bool = False) -> list[float]:
    ok = isinstance(values, (list, tuple)) and len(values) == length and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and (v > 0 or not positive)
        for v in values)
    if not ok:
        what = "positive " if positive else ""
        raise ConfigError(f"{owner}.{field}={values!r}: expected a list of {length} finite {what}numbers (one per "
                          f"channel)")
    return [float(v) for v in values]


def check_finite(array: np.ndarray, name: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise InputError(f"{name}: {bad} non-finite pixel(s) (NaN or Inf); clean or mask the image first")


# -- 2D array helpers (channels-first float32) -------------------------------------------------------------


def resize_chw(array: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """Resize a (C, H, W) float32 array to exactly (C, height, width).

    bilinear: half-pixel centres (align_corners=False) with antialiasing when shrinking (as PIL does);
    area: the average of the covered source pixels (good for large downsampling factors); nearest: labels.
    """
    if array.shape[1:] == (height, width):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array))[None]
    if mode == "bilinear":
        out = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    elif mode == "area":
        out = F.interpolate(tensor, size=(height, width), mode="area")
    else:
        out = F.interpolate(tensor, size=(height, width), mode="nearest-exact")
    return out[0].numpy()


def center_crop_chw(array: np.ndarray, height: int, width: int, name: str) -> np.ndarray:
    """The central (height, width) window of a (C, H, W) array; the image must be at least that large."""
    h, w = array.shape[1:]
    if h < height or w < width:
        raise InputError(f"{name}: image of size {(h, w)} is smaller than crop_size {(height, width)}; resize first")
    top, left = (h - height) // 2, (w - width) // 2
    return array[:, top:top + height, left:left + width]


def is_path(value: Any) -> bool:
    return isinstance(value, (str, Path))


__all__ = ["MedImageProcessor", "RESAMPLE_MODES", "center_crop_chw", "check_finite", "check_size", "check_stats",
           "resize_chw"]
