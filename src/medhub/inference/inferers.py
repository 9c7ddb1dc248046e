"""How a model runs on a whole preprocessed image: one `Inferer` per strategy, chosen by the model.

Every caller that runs a model on a whole image or volume (`medhub predict`, `medhub evaluate`, the pipelines,
the Spaces, the zoo build) calls `model.infer(pixel_values, roi_mask=..., tta=...)`, which is
`model.inferer()(model, pixel_values, ...)`; nothing else decides how tiles, padding and ROIs are handled
(MONAI's inferers play the same role). The model picks the strategy:

- `ClassifierInferer` (CheXNet, ResNet, VGG): one forward pass of the batch, the logits divided by the
  temperature fitted on validation (`weights_info["calibration"]["temperature"]`, 1 when absent: temperature
  scaling, Guo et al. 2017), softmax (sigmoid for one output or multi-label); TTA mirrors left-right only
  (radiographs are not upside-down symmetric);
- `SlidingWindowInferer` ('same'-padding U-Net, Attention U-Net): the whole image in one pass when it fits in
  `roi_size`, mirror-padded to a size the network takes; else Gaussian-weighted windows of `roi_size`
  (`sliding_window_inference`);
- `OverlapTileInferer` (the paper's valid-padding U-Net): the overlap-tile strategy (`overlap_tile_inference`);
- `DeepMedicInferer`: DeepMedic's dense segment tiling (`segment_volume`).

Settings come from `InferenceSettings`: the defaults, then the `inference` entry of the weights' metadata
(`config.weights_info["inference"]`, written by training from the recipe), then the caller's overrides.

ROI (segmenters): with a `roi_mask` (e.g. a brain mask), the input is cropped to the mask's bounding box grown
by `roi_margin` voxels, predicted, and pasted back; every voxel outside the mask is background with probability
1. BraTS models are trained on patches of exactly that box and evaluated that way, so this is what reproduces
their numbers. TTA: the probabilities averaged over flips of `tta_axes` (the mask flipped along).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError, InputError
from ..precision import PRECISION_CHOICES, precision_context, resolve_precision
from .overlap_tile import mirror_pad, overlap_tile_inference
from .sliding_window import sliding_window_inference
from .tta import flip_tta

DEFAULT_ROI = {2: 512, 3: 96}  # window / tile size when neither the weights nor the caller name one
MAX_ROI = 4096
MAX_BATCH = 1024
MAX_MARGIN = 256


@dataclass(frozen=True)
class InferenceSettings:
    """roi_size: window (sliding window), tile (overlap-tile) or segment (DeepMedic) size, an int or one per
    spatial axis (None: the model's default); overlap: sliding-window overlap in [0, 1); batch_size: windows,
    tiles or segments per forward pass; roi_margin: voxels kept around a ROI mask's bounding box; tta_axes:
    spatial axes mirrored by test-time augmentation (None: every axis for segmenters, the last for
    classifiers); precision: "fp32" (exact, the library default), "bf16" (autocast, an explicit speed/accuracy
    trade) or "auto" (bf16 only where the hardware has it natively; `medhub predict` and the Spaces' default)."""

    roi_size: int | tuple[int, ...] | None = None
    overlap: float = 0.5
    batch_size: int = 4
    roi_margin: int = 4
    tta_axes: tuple[int, ...] | None = None
    precision: str = "fp32"

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "weights_info['inference']") -> InferenceSettings:
        values = dict(values or {})
        unknown = sorted(set(values) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(cls.__dataclass_fields__)}")
        return cls().merged(where=where, **values)

    def merged(self, where: str = "inference option", **overrides: Any) -> InferenceSettings:
        """A copy with every override that is not None applied, each checked."""
        given = {k: v for k, v in overrides.items() if v is not None}
        unknown = sorted(set(given) - set(self.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"{where}: unknown inference option(s) {unknown}")
        checked = {name: _CHECKS[name](value, f"{where}.{name}") for name, value in given.items()}
        return replace(self, **checked)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists, not tuples), omitting defaults' Nones."""
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        return {k: v for k, v in data.items() if v is not None}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_roi(value: Any, where: str) -> int | tuple[int, ...]:
    if _is_int(value) and 1 <= value <= MAX_ROI:
        return value
    sizes_ok = isinstance(value, (list, tuple)) and 1 <= len(value) <= 3
    if sizes_ok and all(_is_int(v) and 1 <= v <= MAX_ROI for v in value):
        return tuple(value)
    raise ConfigError(f"{where}={value!r}: expected an integer or a list of 1-3 integers in [1, {MAX_ROI}]")


def _check_overlap(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{where}={value!r}: expected a fraction in [0, 1)")
    return float(value)


def _int_check(low: int, high: int):
    def check(value: Any, where: str) -> int:
        if not _is_int(value) or not low <= value <= high:
            raise ConfigError(f"{where}={value!r}: expected an integer in [{low}, {high}]")
        return value
    return check


def _check_axes(value: Any, where: str) -> tuple[int, ...]:
    ok = isinstance(value, (list, tuple)) and all(_is_int(v) and 0 <= v <= 2 for v in value)
    if not ok or len(set(value)) != len(value):
        raise ConfigError(f"{where}={value!r}: expected distinct spatial axes among 0, 1, 2")
    return tuple(value)


def _check_precision(value: Any, where: str) -> str:
    if value not in PRECISION_CHOICES:
        raise ConfigError(f"{where}={value!r}: expected one of {list(PRECISION_CHOICES)}")
    return value


_CHECKS = {"roi_size": _check_roi, "overlap": _check_overlap, "batch_size": _int_check(1, MAX_BATCH),
           "roi_margin": _int_check(0, MAX_MARGIN), "tta_axes": _check_axes, "precision": _check_precision}


def output_activation(model) -> str:
    """"sigmoid" for one output or multi-label models, else "softmax" (mutually exclusive labels)."""
    if model.config.num_labels == 1 or getattr(model.config, "problem_type", None) == "multi_label_classification":
        return "sigmoid"
    return "softmax"


def temperature(model) -> float:
    """The calibration temperature saved with the weights (`weights_info["calibration"]["temperature"]`), else 1."""
    calibration = (getattr(model.config, "weights_info", None) or {}).get("calibration") or {}
    value = calibration.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1e3:
        raise ConfigError(f"weights_info['calibration']['temperature']={value!r}: expected a number in (0, 1000)")
    return float(value)


def activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=1)


class Inferer:
    """Run `model` on a whole preprocessed input (N, C, *spatial); subclasses implement `predict`.

    `__call__` returns float32 probabilities (N, num_labels, *spatial) on the CPU, at the input's size."""

    returns_probabilities = False  # True when `predict` gives probabilities already (DeepMedic)
    dense = True  # outputs with the input's spatial axes (segmenters); False: one vector per image

    def __init__(self, settings: InferenceSettings | None = None):
        self.settings = settings or InferenceSettings()

    def predict(self, model, x: torch.Tensor, roi_mask: torch.Tensor | None) -> torch.Tensor:
        """Logits (or probabilities) (N, K, *spatial) for `x`; `roi_mask` (*spatial) or None."""
        raise NotImplementedError

    def default_tta_axes(self, spatial_dims: int) -> tuple[int, ...]:
        return tuple(range(spatial_dims))

    def __call__(self, model, pixel_values: torch.Tensor, roi_mask: Any = None, tta: bool = False) -> torch.Tensor:
        x = _model_input(model, pixel_values)
        precision = resolve_precision(self.settings.precision, x.device.type)  # "auto": bf16 only where native
        with torch.inference_mode(), precision_context(precision, x.device.type):
            if roi_mask is None:
                return self._probabilities(model, x, None, tta).cpu()
            if not self.dense:
                raise InputError(f"roi_mask: {type(model).__name__} is a classifier; a ROI applies to segmenters")
            return self._within_roi(model, x, _roi(roi_mask, x), tta)

    def _probabilities(self, model, x: torch.Tensor, mask: torch.Tensor | None, tta: bool) -> torch.Tensor:
        activation = None if self.returns_probabilities else output_activation(model)

        def run(v: torch.Tensor, *masks: torch.Tensor) -> torch.Tensor:
            return self.predict(model, v, masks[0] if masks else None).float()

        if tta:
            axes = self.settings.tta_axes if self.settings.tta_axes is not None else \
                self.default_tta_axes(x.ndim - 2)
            if any(a >= x.ndim - 2 for a in axes):
                raise InputError(f"tta_axes={list(axes)}: the input has only {x.ndim - 2} spatial axes")
            return flip_tta(run, x, spatial_axes=axes, activation=activation,
                            masks=() if mask is None else (mask,), dense=self.dense)
        out = run(x, *(() if mask is None else (mask,)))
        return out if activation is None else activate(out, activation)

    def _within_roi(self, model, x: torch.Tensor, mask: torch.Tensor, tta: bool) -> torch.Tensor:
        margin = self.settings.roi_margin
        found = torch.nonzero(mask)
        low = (found.min(0).values - margin).clamp(min=0).tolist()
        high = [min(int(h) + 1 + margin, s) for h, s in zip(found.max(0).values, mask.shape)]
        box = tuple(slice(a, b) for a, b in zip(low, high))
        inside = self._probabilities(model, x[(slice(None), slice(None), *box)].contiguous(), mask[box], tta).cpu()
        out = torch.zeros((x.shape[0], inside.shape[1], *mask.shape), dtype=inside.dtype)
        out[(slice(None), slice(None), *box)] = inside
        outside = ~mask.cpu()
        out[:, :, outside] = 0.0
        if out.shape[1] > 1:  # background (label 0) is certain outside the ROI
            out[:, 0, outside] = 1.0
        return out


class ClassifierInferer(Inferer):
    """One forward pass of the batch (see the module docstring)."""

    dense = False

    def predict(self, model, x, roi_mask):
        return self._calibrated_logits(model, model(pixel_values=x))

    def default_tta_axes(self, spatial_dims: int) -> tuple[int, ...]:
        return (spatial_dims - 1,)

    def probabilities_with_features(self, model, pixel_values) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The probabilities `__call__` gives without TTA, and the last hidden state of the same forward pass
        (the final feature maps a CAM needs: no second forward), or None when the model gives none."""
        x = _model_input(model, pixel_values)
        precision = resolve_precision(self.settings.precision, x.device.type)
        with torch.inference_mode(), precision_context(precision, x.device.type):
            output = model(pixel_values=x, output_hidden_states=True)
            probs = activate(self._calibrated_logits(model, output).float(), output_activation(model))
        return probs.cpu(), (output.hidden_states[-1] if output.hidden_states else None)

    @staticmethod
    def _calibrated_logits(model, output) -> torch.Tensor:
        return output.logits / temperature(model)  # the stored calibration temperature (1 when none)


class SlidingWindowInferer(Inferer):
    """'same'-padding segmenters: whole image in one pass when it fits, else Gaussian-weighted windows."""

    def predict(self, model, x, roi_mask):
        spatial, dims = tuple(x.shape[2:]), x.ndim - 2
        step = int(getattr(model, "input_size_multiple", 1))
        roi = _per_axis(self.settings.roi_size or DEFAULT_ROI[dims], dims)
        roi = tuple(max(step, r // step * step) for r in roi)
        rounded = tuple(max(step, math.ceil(s / step) * step) for s in spatial)
        window = tuple(min(r, p) for r, p in zip(roi, rounded))
        # Mirror-pad axes shorter than their window (the network needs a multiple of `step`, and mirrored
        # context is closer to the image than zeros), then crop the prediction back.
        grown = mirror_pad(x, [(0, max(w - s, 0)) for w, s in zip(window, spatial)])

        def logits(v):
            return model(pixel_values=v).logits

        if window == tuple(grown.shape[2:]):
            out = logits(grown)
        else:
            out = sliding_window_inference(logits, grown, window, overlap=self.settings.overlap, mode="gaussian",
                                           batch_size=self.settings.batch_size, precision=self.settings.precision)
        return out[(slice(None), slice(None), *(slice(0, s) for s in spatial))]


class OverlapTileInferer(Inferer):
    """The U-Net paper's overlap-tile strategy for valid-padding networks."""

    def predict(self, model, x, roi_mask):
        spatial, dims = tuple(x.shape[2:]), x.ndim - 2
        roi = _per_axis(self.settings.roi_size or DEFAULT_ROI[dims], dims)
        in_tile = tuple(model.valid_input_size(roi))
        out_tile = model.output_size(in_tile)
        context = [(i - o) // 2 for i, o in zip(in_tile, out_tile)]
        # Small images: one tile just large enough to cover them (plus context), not the full ROI.
        in_tile = tuple(min(t, model.valid_input_size((s + 2 * c,) * dims)[0])
                        for t, s, c in zip(in_tile, spatial, context))
        out_tile = model.output_size(in_tile)
        return overlap_tile_inference(lambda v: model(pixel_values=v).logits, x, out_tile, in_tile,
                                      batch_size=self.settings.batch_size)


class DeepMedicInferer(Inferer):
    """DeepMedic's dense segment tiling (`model.segment_volume`), which gives probabilities; with a ROI mask,
    segments that hold no mask voxel are skipped, as the original does with a brain mask."""

    returns_probabilities = True

    def predict(self, model, x, roi_mask):
        segment = self.settings.roi_size
        return torch.stack([
            model.segment_volume(volume, batch_size=self.settings.batch_size, progress=False,
                                 segment_size=segment, roi_mask=roi_mask, precision=self.settings.precision)
            for volume in x
        ]).to(x.device)


def _per_axis(size: int | Sequence[int], dims: int) -> tuple[int, ...]:
    if isinstance(size, int):
        return (size,) * dims
    if len(size) != dims:
        raise InputError(f"roi_size={list(size)}: expected one size per spatial axis ({dims})")
    return tuple(size)


def _model_input(model, pixel_values: Any) -> torch.Tensor:
    """`pixel_values` checked against the model (rank, channels, finite) and moved to its device and dtype."""
    dims = model.spatial_dims
    model.validate_pixel_values(pixel_values, spatial_dims=dims)
    parameter = next(model.parameters())
    return pixel_values.to(device=parameter.device, dtype=parameter.dtype)


def _roi(mask: Any, x: torch.Tensor) -> torch.Tensor:
    """A boolean (*spatial) ROI mask on x's device; an empty one is an error (nothing to segment)."""
    mask = torch.as_tensor(mask)
    if tuple(mask.shape) != tuple(x.shape[2:]):
        raise InputError(f"roi_mask: shape {tuple(mask.shape)} differs from the image's spatial shape "
                         f"{tuple(x.shape[2:])}")
    mask = mask.to(device=x.device) != 0
    if not bool(mask.any()):
        raise InputError("roi_mask: the mask is empty, so there is nothing to segment")
    return mask


def pad_to_multiple(x: torch.Tensor, step: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """x mirror-padded at the high end of every spatial axis to a multiple of `step` (and the original size)."""
    spatial = tuple(x.shape[2:])
    padded = tuple(max(step, math.ceil(s / step) * step) for s in spatial)
    return mirror_pad(x, [(0, p - s) for p, s in zip(padded, spatial)]), spatial


def resize_probabilities(probs: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(N, K, *spatial) probabilities resized (bi/trilinear) to `size`, unchanged when already that size."""
    size = tuple(int(s) for s in size)
    if tuple(probs.shape[2:]) == size:
        return probs
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return F.interpolate(probs, size=size, mode=mode, align_corners=False)


__all__ = ["ClassifierInferer", "DeepMedicInferer", "Inferer", "InferenceSettings", "OverlapTileInferer",
           "SlidingWindowInferer", "activate", "output_activation", "pad_to_multiple", "resize_probabilities",
           "temperature"]
