"""Sliding-window inference for 'same'-padding networks on images/volumes larger than their training patch.

Windows of `roi_size` step by roi*(1 - overlap) along each axis, the last one clipped to the border so every
voxel is covered; an image smaller than the ROI is zero-padded (centred) and the output cropped back. Overlapping
predictions are blended with an importance map: constant (plain average) or Gaussian,
w(x) = prod_axes exp(-d^2 / (2 (sigma_scale * roi)^2)) with d the distance to the window centre, which
down-weights window borders where a CNN sees least context (nnU-Net, Isensee et al. 2021, Nat. Methods; MONAI's
`sliding_window_inference`). The map is normalised to a maximum of 1 and clamped to at least 1e-3 so every voxel
keeps a positive weight.

Memory is bounded: windows go through `model_fn` `batch_size` at a time and their weighted logits are added to
one output buffer; only the buffer, one batch and the (spatial-only) weight sum are ever held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import InputError
from ..precision import check_precision, precision_context, resolve_precision
from ._utils import as_spatial_tuple, check_batch_size, check_image, check_output, window_slices

__all__ = ["gaussian_importance_map", "sliding_window_inference", "window_starts"]

_MIN_WEIGHT = 1e-3


def gaussian_importance_map(
    roi_size: Sequence[int], sigma_scale: float = 0.125, device=None, dtype=torch.float32
) -> torch.Tensor:
    """Separable Gaussian weights of shape `roi_size`, centred ((r - 1) / 2, so symmetric), max 1, min >= 1e-3."""
    if sigma_scale <= 0:
        raise InputError(f"sigma_scale: expected a positive fraction of the ROI, got {sigma_scale}")
    weights = torch.ones((), dtype=torch.float64)  # built once on the CPU in float64, then moved
    for axis, r in enumerate(roi_size):
        d = torch.arange(r, dtype=torch.float64) - (r - 1) / 2.0
        g = torch.exp(-(d**2) / (2.0 * (sigma_scale * r) ** 2))
        shape = [1] * len(roi_size)
        shape[axis] = r
        weights = weights * g.reshape(shape)
    weights = weights / weights.max()
    return weights.clamp_(min=_MIN_WEIGHT).to(device=device, dtype=dtype)


def window_starts(size: int, roi: int, overlap: float) -> list[int]:
    """Starts of the windows along one axis: step roi*(1-overlap), last window flush with the border."""
    if size <= roi:
        return [0]
    step = max(1, int(roi * (1.0 - overlap)))
    n = math.ceil((size - roi) / step) + 1
    return [min(i * step, size - roi) for i in range(n)]


def _pad_to_roi(image: torch.Tensor, roi: tuple[int, ...]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad (centred) every axis shorter than the ROI; return the padded image and the crop undoing it."""
    spatial = image.shape[2:]
    pads, crop = [], []
    for size, r in zip(spatial, roi):
        total = max(r - size, 0)
        low = total // 2
        pads.append((low, total - low))
        crop.append(slice(low, low + size))
    if not any(total for pair in pads for total in pair):
        return image, tuple(crop)
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    return F.pad(image, flat, mode="constant", value=0.0), tuple(crop)


def sliding_window_inference(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    roi_size: int | Sequence[int],
    overlap: float = 0.5,
    mode: str = "gaussian",
    sigma_scale: float = 0.125,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    progress: bool = False,
    precision: str = "fp32",
) -> torch.Tensor:
    """Predict logits for a whole (N, C, *spatial) image with a model trained on `roi_size` patches.

    `model_fn` maps a batch of windows (B, C, *roi_size) to logits (B, C_out, *roi_size). Windows are moved to
    `device` (default: the image's), where the output buffer also lives; the result (N, C_out, *spatial) is
    returned there, accumulated in float32 (or the model's dtype if wider).
    precision: "fp32" (exact), "bf16": `model_fn` runs under bfloat16 autocast (an explicit speed/accuracy
    trade; blending and accumulation stay float32), or "auto" (bf16 only where native, `medhub.precision`).
    See `medhub.acceleration` for the exact fast path.
    """
    check_precision(precision)
    image = check_image(image)
    n_spatial = image.ndim - 2
    roi = as_spatial_tuple(roi_size, n_spatial, "roi_size")
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"overlap: expected a fraction in [0, 1), got {overlap}")
    if mode not in ("gaussian", "constant"):
        raise InputError(f"mode: expected 'gaussian' or 'constant', got {mode!r}")
    check_batch_size(batch_size)
    device = torch.device(device) if device is not None else image.device
    precision = resolve_precision(precision, device.type)  # "auto": bf16 only where it is native

    with torch.inference_mode():
        padded, crop = _pad_to_roi(image, roi)
        spatial = tuple(padded.shape[2:])
        windows = window_slices([window_starts(s, r, overlap) for s, r in zip(spatial, roi)], roi)
        jobs = [(n, w) for n in range(padded.shape[0]) for w in windows]
        weight = gaussian_importance_map(roi, sigma_scale, device) if mode == "gaussian" else None

        # Sum of weights per voxel: identical for every image of the batch, so computed once, spatially.
        weight_sum = torch.zeros(spatial, dtype=torch.float32, device=device)
        for w in windows:
            weight_sum[w] += 1.0 if weight is None else weight

        output = None
        batches = range(0, len(jobs), batch_size)
        for start in tqdm(batches, desc="sliding window", disable=not progress):
            batch = jobs[start : start + batch_size]
            x = torch.stack([padded[(n, slice(None), *w)] for n, w in batch]).to(device, non_blocking=True)
            with precision_context(precision, device.type):
                pred = model_fn(x)
            if precision != "fp32":
                pred = pred.float()
            check_output(pred, len(batch), roi, "model_fn must keep the window's spatial size ('same' padding)")
            if output is None:  # accumulate in at least float32, even for half-precision models
                dtype = torch.promote_types(pred.dtype, torch.float32)
                output = torch.zeros((padded.shape[0], pred.shape[1], *spatial), dtype=dtype, device=device)
            pred = pred.to(device)
            for (n, w), p in zip(batch, pred):
                if weight is None:
                    output[(n, slice(None), *w)] += p
                else:  # fused multiply-add: no temporary for the weighted window
                    output[(n, slice(None), *w)].addcmul_(p, weight)
        output /= weight_sum
        return output[(slice(None), slice(None), *crop)]
