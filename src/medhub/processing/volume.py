"""`VolumeImageProcessor`: 3D volumes (NIfTI, DICOM series, arrays; one or more channels) to
`pixel_values` (N, C, X, Y, Z), axes as in `medhub.io.volume` (nibabel's X, Y, Z).

Steps, in order, each a saved field (nothing else happens):
1. `orientation`: flip/permute every channel to these axcodes (e.g. "RAS"), no interpolation; None = keep;
2. `target_spacing`: resample to exactly this voxel size in mm on a grid that keeps the first voxel centre
   and stays inside the input's extent (scipy.ndimage.affine_transform with a diagonal matrix, the same
   interpolation as ndimage.zoom; `interpolation_order` for images - 1 = trilinear - and always 0 =
   nearest for masks and label maps so labels stay labels); None = keep;
3. `intensity_normalization`, per channel:
   - "zscore": (x - mean) / std over `zscore_region` ("nonzero" voxels, the "whole" volume, or the "mask"
     passed to the call, e.g. a brain mask); voxels outside the region are set to 0 (DeepMedic/BraTS);
   - "ct_window": HU window `window_center`/`window_width` mapped linearly to [0, 1], clipped;
   - "none": values passed as they are (inputs already normalised, like the BraTS examples);
4. channels stacked in the order of `channel_names`;
5. the ROI mask (`mask_name`, e.g. "brainmask"): the mask passed to the call (through the same geometry steps,
   nearest neighbour), else, with `mask_fallback="foreground"`, the voxels where any channel differs from its
   background value, the most frequent value among the volume's 8 corners (the constant background of a
   skull-stripped volume). Inference is
   restricted to the ROI (`medhub.inference.inferers`: crop to its bounding box, background outside), and
   `zscore_region="mask"` normalises inside it. `medhub predict` finds the mask as a file whose name contains
   `mask_name` in a subject folder; training reads the dataset column of that name.

Inputs for one subject: a `Volume`, a path (NIfTI file or DICOM series folder), a dict {channel name:
volume or path} (required when there are several channels, so the order can never be mixed up), or an
array (X, Y, Z) / (C, X, Y, Z). A plain array has no geometry: it is taken to be in the target geometry
already, so steps 1-2 are skipped for it. A list of subjects is a batch (they must end with one shape).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..errors import ConfigError, InputError
from ..io import Volume, read_any, reorient, spacing_from_affine
from ..io.volume import parse_axcodes
from .base import MedImageProcessor

INTENSITY_MODES = ("none", "zscore", "ct_window")
MAX_RESAMPLED_VOXELS = 1024**3  # a resampled channel larger than this is refused (absurd header spacing)
ZSCORE_REGIONS = ("nonzero", "whole", "mask")
MASK_FALLBACKS = ("none", "foreground")


@dataclass
class ProcessedSubject:
    """One subject after the processor: `pixel_values` (C, X, Y, Z) float32, `labels` (X, Y, Z) int64 or None,
    `roi_mask` (X, Y, Z) bool or None, `affine` (4x4) of the processed grid (to write predictions back)."""

    pixel_values: np.ndarray
    labels: np.ndarray | None
    roi_mask: np.ndarray | None
    affine: np.ndarray


class VolumeImageProcessor(MedImageProcessor):
    def __init__(
        self,
        channel_names: list[str] | None = None,
        orientation: str | None = "RAS",
        target_spacing: list[float] | None = None,
        interpolation_order: int = 1,
        intensity_normalization: str = "none",
        zscore_region: str = "nonzero",
        window_center: float | None = None,
        window_width: float | None = None,
        mask_name: str | None = None,
        mask_fallback: str = "none",
    ):
        super().__init__()
        name = type(self).__name__
        channel_names = list(channel_names) if channel_names is not None else ["image"]
        distinct = len(set(channel_names)) == len(channel_names)
        if not channel_names or not distinct or not all(isinstance(c, str) for c in channel_names):
            raise ConfigError(f"{name}.channel_names={channel_names!r}: expected distinct channel names, e.g. "
                              f"['flair', 't1c']")
        if orientation is not None:
            if parse_axcodes(orientation) is None:
                raise ConfigError(f"{name}.orientation={orientation!r}: expected three axcodes such as 'RAS' or "
                                  f"'LPS', or None")
            orientation = "".join(parse_axcodes(orientation))
        if target_spacing is not None:
            ok = isinstance(target_spacing, (list, tuple)) and len(target_spacing) == 3 and all(
                isinstance(s, (int, float)) and not isinstance(s, bool) and 0.01 <= s <= 100 for s in target_spacing)
            if not ok:
                raise ConfigError(f"{name}.target_spacing={target_spacing!r}: expected 3 voxel sizes in mm "
                                  f"(0.01..100), or None")
            target_spacing = [float(s) for s in target_spacing]
        if interpolation_order not in (0, 1, 3):
            raise ConfigError(f"{name}.interpolation_order={interpolation_order!r}: expected 0, 1 or 3")
        if intensity_normalization not in INTENSITY_MODES:
            raise ConfigError(f"{name}.intensity_normalization={intensity_normalization!r}: "
                              f"expected one of {list(INTENSITY_MODES)}")
        if zscore_region not in ZSCORE_REGIONS:
            raise ConfigError(f"{name}.zscore_region={zscore_region!r}: expected one of {list(ZSCORE_REGIONS)}")
        for field, value in (("window_center", window_center), ("window_width", window_width)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not np.isfinite(value)):
                raise ConfigError(f"{name}.{field}={value!r}: expected a finite number (HU) or None")
        window_missing = window_center is None or window_width is None or window_width <= 0
        if intensity_normalization == "ct_window" and window_missing:
            raise ConfigError(f"{name}: intensity_normalization='ct_window' needs window_center and a positive "
                              f"window_width (HU)")
        if mask_name is not None and (not isinstance(mask_name, str) or not mask_name or mask_name in channel_names):
            raise ConfigError(f"{name}.mask_name={mask_name!r}: expected a name (e.g. 'brainmask') other than the "
                              f"channel names {channel_names}, or None")
        if mask_fallback not in MASK_FALLBACKS:
            raise ConfigError(f"{name}.mask_fallback={mask_fallback!r}: expected one of {list(MASK_FALLBACKS)}")
        self.channel_names = channel_names
        self.mask_name = mask_name
        self.mask_fallback = mask_fallback
        self.orientation = orientation
        self.target_spacing = target_spacing
        self.interpolation_order = interpolation_order
        self.intensity_normalization = intensity_normalization
        self.zscore_region = zscore_region
        self.window_center = None if window_center is None else float(window_center)
        self.window_width = None if window_width is None else float(window_width)

    @classmethod
    def default_for(cls, config) -> VolumeImageProcessor:
        """Channels in `config.channel_names` order, reoriented to RAS, z-scored inside the non-zero region."""
        names = config.channel_names or (["image"] if config.in_channels == 1 else
                                         [f"channel_{i}" for i in range(config.in_channels)])
        return cls(channel_names=names, orientation="RAS", intensity_normalization="zscore",
                   zscore_region="nonzero")

    # -- geometry ------------------------------------------------------------------------------------------
    def _geometry(self, volume: Volume, order: int) -> Volume:
        if self.orientation is not None:
            volume = reorient(volume, self.orientation, volume.source)
        if self.target_spacing is not None:
            step = np.asarray(self.target_spacing) / np.asarray(volume.spacing)  # output step in input voxels
            if not np.allclose(step, 1.0, atol=1e-6):
                # New grid: same first voxel centre, exact target spacing, staying inside the input's extent.
                shape = np.floor((np.asarray(volume.shape) - 1) / step + 1e-6) + 1
                if not np.isfinite(shape).all() or float(np.prod(shape)) > MAX_RESAMPLED_VOXELS:
                    raise InputError(f"{volume.source}: resampling spacing {tuple(volume.spacing)} mm to "
                                     f"{tuple(self.target_spacing)} mm gives {shape.tolist()} voxels (more than "
                                     f"{MAX_RESAMPLED_VOXELS}); check the file's voxel size")
                shape = shape.astype(int)
                array = ndimage.affine_transform(volume.array, step, offset=0.0, output_shape=tuple(shape),
                                                 order=order, mode="nearest")
                affine = volume.affine @ np.diag([*step, 1.0])
                volume = Volume(array.astype(np.float32), affine, spacing_from_affine(affine), volume.source,
                                volume.header)
        return volume

    # -- intensity -----------------------------------------------------------------------------------------
    def _intensity(self, x: np.ndarray, mask: np.ndarray | None, name: str) -> np.ndarray:
        if self.intensity_normalization == "none":
            return x
        if self.intensity_normalization == "ct_window":
            lo = self.window_center - self.window_width / 2.0
            return np.clip((x - lo) / self.window_width, 0.0, 1.0).astype(np.float32)
        region = {"nonzero": x != 0, "whole": np.ones_like(x, dtype=bool), "mask": mask}[self.zscore_region]
        if region is None:
            raise InputError(f"{name}: zscore_region='mask' needs a mask volume passed as processor(..., mask=...)")
        if region.sum() < 2:
            raise InputError(f"{name}: the z-score region ({self.zscore_region}) has fewer than 2 voxels")
        values = x[region].astype(np.float64)  # float64: float32 sums of large intensities overflow
        std = float(values.std())
        if std == 0:
            raise InputError(f"{name}: constant intensity inside the z-score region; cannot divide by a zero std")
        out = np.zeros_like(x, dtype=np.float32)
        out[region] = (values - values.mean()) / std
        if not np.isfinite(std) or not np.isfinite(out).all():
            raise InputError(f"{name}: z-score is not finite (intensities up to {float(np.abs(values).max()):.3g})")
        return out

    # -- inputs --------------------------------------------------------------------------------------------
    def _channels(self, subject: Any, index: int) -> tuple[list[Volume | np.ndarray], str]:
        """A subject as a list of single-channel items in `channel_names` order (Volumes or raw arrays)."""
        where = f"subject {index}"
        if isinstance(subject, dict):
            missing = [c for c in self.channel_names if c not in subject]
            extra = [c for c in subject if c not in self.channel_names]
            if missing or extra:
                raise InputError(f"{where}: channels {sorted(subject)} do not match channel_names {self.channel_names} "
                                 f"(missing {missing}, unexpected {extra})")
            return [_load_volume(subject[c], f"{where} channel {c!r}") for c in self.channel_names], where
        item = _load_volume(subject, where)
        if isinstance(item, Volume):
            items = [item]
        elif item.ndim == 3:
            items = [item]
        else:
            items = list(item)
        if len(items) != len(self.channel_names):
            raise InputError(f"{where}: got {len(items)} channel(s); expected {len(self.channel_names)} "
                             f"{self.channel_names} "
                             "(pass a dict {name: volume} or an array (C, X, Y, Z))")
        return items, where

    def preprocess_subject(self, subject: Any, mask: Any = None, labels: Any = None,
                           index: int = 0) -> ProcessedSubject:
        """One subject through every step (see the module docstring). `mask`: the ROI mask (volume, path or
        array), else the `mask_fallback`; `labels`: a label map taken through the same geometry."""
        items, where = self._channels(subject, index)
        volumes = [self._geometry(v, self.interpolation_order) if isinstance(v, Volume) else v for v in items]
        ref = volumes[0]
        affine = ref.affine if isinstance(ref, Volume) else np.eye(4)
        shape = ref.shape
        for name, v in zip(self.channel_names, volumes):
            if v.shape != shape:
                raise InputError(f"{where}: channel {name!r} has shape {v.shape} after geometry steps, channel "
                                 f"{self.channel_names[0]!r} has {shape}")
            if isinstance(v, Volume) and isinstance(ref, Volume) and not np.allclose(v.affine, ref.affine, atol=1e-3):
                raise InputError(f"{where}: channel {name!r} has a different affine from {self.channel_names[0]!r}; "
                                 "co-register the channels first")
        raw = [(v.array if isinstance(v, Volume) else v).astype(np.float32) for v in volumes]
        if mask is not None:
            roi = self._aux(mask, shape, where, "mask") > 0
        elif self.mask_fallback == "foreground":
            roi = np.zeros(shape, dtype=bool)
            for x in raw:
                roi |= x != background_value(x)
        else:
            roi = None
        arrays = []
        for name, v, x in zip(self.channel_names, volumes, raw):
            source = f" ({v.source})" if isinstance(v, Volume) and v.source else ""
            arrays.append(self._intensity(x, roi, f"{where} channel {name!r}{source}"))
        label_array = None
        if labels is not None:
            label_array = np.rint(self._aux(labels, shape, where, "labels")).astype(np.int64)
        return ProcessedSubject(np.stack(arrays), label_array, roi, np.asarray(affine))

    def _aux(self, item: Any, shape: tuple, where: str, what: str) -> np.ndarray:
        """A mask or label map through the same geometry steps, nearest-neighbour (order 0)."""
        loaded = _load_volume(item, f"{where} {what}")
        if isinstance(loaded, Volume):
            loaded = self._geometry(loaded, 0).array
        if loaded.ndim != 3 or loaded.shape != shape:
            raise InputError(f"{where}: {what} has shape {loaded.shape}; expected {shape} like the image")
        return loaded

    def preprocess(self, images: Any, return_tensors: str | None = "pt", mask: Any = None, labels: Any = None,
                   **kwargs):
        """`images`: one subject or a list of subjects (see the module docstring); `mask`/`labels` likewise."""
        if kwargs:
            raise InputError(f"{type(self).__name__}: unexpected argument(s) {sorted(kwargs)}")
        batched = isinstance(images, (list, tuple))
        subjects = list(images) if batched else [images]
        masks = list(mask) if batched and mask is not None else [mask] * len(subjects)
        label_maps = list(labels) if batched and labels is not None else [labels] * len(subjects)
        if not subjects or len(masks) != len(subjects) or len(label_maps) != len(subjects):
            raise InputError(f"{type(self).__name__}: {len(subjects)} subject(s) but {len(masks)} mask(s) "
                             f"and {len(label_maps)} label map(s)")
        results = [self.preprocess_subject(s, m, lab, i)
                   for i, (s, m, lab) in enumerate(zip(subjects, masks, label_maps))]
        shapes = {r.pixel_values.shape for r in results}
        if len(shapes) > 1:
            raise InputError(f"{type(self).__name__}: subjects end with different shapes {sorted(shapes)}; "
                             "batch subjects of one size or process them one at a time")
        data = {"pixel_values": np.stack([r.pixel_values for r in results])}
        if labels is not None:
            data["labels"] = np.stack([r.labels for r in results])
        if all(r.roi_mask is not None for r in results):
            data["roi_mask"] = np.stack([r.roi_mask for r in results])
        return self._batch_feature(data, return_tensors)


def background_value(x: np.ndarray) -> float:
    """The most frequent value among the 8 corners of a volume (the smallest on a tie): the constant background
    of a skull-stripped volume even when some corners fall inside the head."""
    corners = x[np.ix_(*[[0, n - 1] for n in x.shape])].ravel()
    values, counts = np.unique(corners, return_counts=True)
    return float(values[np.argmax(counts)])


def _load_volume(item: Any, where: str) -> Volume | np.ndarray:
    if isinstance(item, (str, Path)):
        item = read_any(item)
        if not isinstance(item, Volume):
            raise InputError(f"{where}: {getattr(item, 'source', item)} is a 2D image; "
                             "expected a NIfTI file or a DICOM series folder")
    if isinstance(item, Volume):
        return item
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if not isinstance(item, np.ndarray):
        raise InputError(f"{where}: unsupported type {type(item).__name__}; expected a Volume, path, dict or array")
    if item.ndim not in (3, 4):
        raise InputError(f"{where}: array of shape {item.shape}; expected (X, Y, Z) or (C, X, Y, Z)")
    if not np.issubdtype(item.dtype, np.number) and item.dtype != np.bool_:
        raise InputError(f"{where}: array dtype {item.dtype} is not numeric")
    item = item.astype(np.float32)
    if not np.isfinite(item).all():
        raise InputError(f"{where}: {int((~np.isfinite(item)).sum())} non-finite voxel(s) (NaN or Inf)")
    return item


__all__ = ["ProcessedSubject", "VolumeImageProcessor"]
