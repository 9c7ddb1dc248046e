"""Collators that turn rows of a `datasets.Dataset` into the batches medhub models take.

A row holds a model-ready image under `pixel_values` (or `image`): what the model's processor made of it (see
`medhub.training.data`; the collators change no value), and a target under `labels` (or `label`, or `mask`), as
numpy arrays, torch tensors or nested lists. Images without a channel axis get one (greyscale). Shapes and
dtypes are checked and errors name the row and the field.

- `SegmentationCollator(spatial_dims)`: 2D images or 3D patches, labels (N, *spatial) int64 class indices,
  optional `weight_map` (N, *spatial) float.
- `ClassificationCollator(num_labels, multi_label)`: single-label int64 (N,) or multi-hot float (N, K).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError

IMAGE_KEYS = ("pixel_values", "image")
LABEL_KEYS = ("labels", "label", "mask")


def _field(row: dict, keys: Sequence[str], index: int, required: bool = True) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    if required:
        raise InputError(f"batch row {index}: expected one of the fields {list(keys)}, found {sorted(row)}")
    return None


def _array(value: Any, name: str, index: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise InputError(f"batch row {index}: field {name!r} is not array-like ({err})") from None


@dataclass
class _ImageCollator:
    """Shared image handling: the channel axis and the checks."""

    spatial_dims: int = 2
    in_channels: int | None = None

    def image(self, row: dict, index: int) -> torch.Tensor:
        array = _array(_field(row, IMAGE_KEYS, index), "pixel_values", index)
        if array.ndim == self.spatial_dims:
            array = array[None]
        elif array.ndim == self.spatial_dims + 1 and self.spatial_dims == 2 and array.shape[-1] in (1, 3, 4) \
                and array.shape[0] not in (1, 3, 4):
            array = np.moveaxis(array, -1, 0)  # (H, W, C) image as PIL/numpy store it
        if array.ndim != self.spatial_dims + 1:
            raise InputError(f"batch row {index}: pixel_values has shape {array.shape}; expected "
                             f"{self.spatial_dims} spatial dims with an optional leading channel axis")
        if self.in_channels is not None and array.shape[0] != self.in_channels:
            raise InputError(f"batch row {index}: pixel_values has {array.shape[0]} channel(s), the model expects "
                             f"{self.in_channels}")
        if array.dtype.kind not in "uif":
            raise InputError(f"batch row {index}: pixel_values dtype {array.dtype} is not numeric")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    @staticmethod
    def stack(tensors: list[torch.Tensor], name: str) -> torch.Tensor:
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1:
            raise InputError(f"{name}: rows of one batch must have equal shapes, got {sorted(shapes)}; crop or "
                             "sample patches of one size (see medhub.augment)")
        return torch.stack(tensors)


@dataclass
class SegmentationCollator(_ImageCollator):
    """Batches of images (or 3D patches) with per-pixel integer labels and an optional weight map."""

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = {"pixel_values": self.stack([self.image(r, i) for i, r in enumerate(rows)], "pixel_values")}
        labels = [self.label(r, i) for i, r in enumerate(rows)]
        if all(label is not None for label in labels):
            batch["labels"] = self.stack(labels, "labels")
        elif any(label is not None for label in labels):
            raise InputError("labels: some rows of the batch have labels and some do not")
        if all("weight_map" in r and r["weight_map"] is not None for r in rows):
            maps = [torch.as_tensor(_array(r["weight_map"], "weight_map", i), dtype=torch.float32)
                    for i, r in enumerate(rows)]
            batch["weight_map"] = self.stack(maps, "weight_map")
        return batch

    def label(self, row: dict, index: int) -> torch.Tensor | None:
        value = _field(row, LABEL_KEYS, index, required=False)
        if value is None:
            return None
        array = _array(value, "labels", index)
        if array.ndim == self.spatial_dims + 1 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != self.spatial_dims:
            raise InputError(f"batch row {index}: labels has shape {array.shape}; expected a label map with "
                             f"{self.spatial_dims} spatial dims (class indices, no channel axis)")
        if array.dtype.kind == "f":
            if not np.all(array == np.round(array)):
                raise InputError(f"batch row {index}: labels are fractional; expected integer class indices")
        return torch.from_numpy(array.astype(np.int64))


@dataclass
class ClassificationCollator(_ImageCollator):
    """Batches of images with single-label class indices or multi-hot vectors (`multi_label=True`)."""

    num_labels: int = 2
    multi_label: bool = False

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        images = [self.image(r, i) for i, r in enumerate(rows)]
        batch = {"pixel_values": self.stack(images, "pixel_values")}
        labels = [_field(r, LABEL_KEYS, i, required=False) for i, r in enumerate(rows)]
        if all(label is not None for label in labels):
            batch["labels"] = torch.stack([self.label(v, i) for i, v in enumerate(labels)])
        elif any(label is not None for label in labels):
            raise InputError("labels: some rows of the batch have labels and some do not")
        return batch

    def label(self, value: Any, index: int) -> torch.Tensor:
        array = _array(value, "labels", index).reshape(-1)
        if self.multi_label:
            if array.size != self.num_labels or not np.isin(array, (0, 1)).all():
                raise InputError(f"batch row {index}: multi-label target {array.tolist()} is not a 0/1 vector "
                                 f"of length num_labels={self.num_labels}")
            return torch.from_numpy(array.astype(np.float32))
        if array.size != 1 or array.dtype.kind == "f" and array[0] != round(float(array[0])):
            raise InputError(f"batch row {index}: single-label target {array.tolist()} is not one class index")
        cls = int(array[0])
        if not 0 <= cls < self.num_labels:
            raise InputError(f"batch row {index}: class index {cls} is outside [0, {self.num_labels - 1}]")
        return torch.tensor(cls, dtype=torch.int64)
