"""Dense whole-volume inference for DeepMedic, tiled exactly as the original's testing routine.

1. Padding: the volume is padded by the unpredicted margin of a segment (S - o voxels per axis, (S - o)//2
   before and the rest after; 8 + 8 for the released model), by reflection without repeating the edge
   voxel (numpy 'reflect', the original's `pad_imgs_of_case`), so that every voxel gets a prediction.
2. Tiling: normal segments of the inference size S (45^3 released) start at 0, o, 2o, ... per axis; the
   last one on each axis is moved back to end at the volume's end (the original's
   `get_slice_coords_of_all_img_tiles`). Tiles are visited with the first axis varying fastest and later
   tiles overwrite the overlap, as the original writes its probability maps.
3. Subsampled inputs: every f-th voxel from the original's `get_subsampl_segment` position. Voxels outside
   the padded volume take the "border intensity", the mean of the 8 corners of each padded channel.
   Like the original, when that position starts before the volume the grid restarts at voxel 0 (a shift
   of (-start) mod f voxels) and the last voxel of that axis is left at the border intensity.
Segments are run in batches of `batch_size`; memory is bounded by one batch plus the probability maps.
`precision="bf16"` runs the network under bfloat16 autocast (faster on CPUs with native bf16; the
probabilities then differ slightly from float32); the default "fp32" is the exact path. `compile=True` first
compiles a frozen copy of the model with torch.compile (`medhub.acceleration.optimize_for_inference`) and pads
the last batch to `batch_size` so that one compiled graph serves every batch; the compile time pays off on whole
volumes. benchmarks/RESULTS.md (row 5) has the measured speed, compile time and effect on Dice of both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...acceleration import optimize_for_inference
from ...errors import InputError
from ...precision import check_precision, precision_context, resolve_precision
from .geometry_deepmedic import Triple, as_triple, subsampled_offset


def tile_starts(size: int, segment: int, stride: int) -> list[int]:
    """First voxel of every segment along one axis of a (padded) volume, the last one flush with the end."""
    starts, next_start = [], 0
    while True:
        far = min(next_start + segment, size)
        starts.append(far - segment)
        next_start += stride
        if far >= size:
            return starts


def subsampled_indices(start: int, factor: int, count: int, size: int) -> torch.Tensor:
    """Voxel indices (size = border) of a subsampled input along one axis, as the original samples them."""
    j = torch.arange(count)
    high = min(start + factor * (count - 1) + 1, size)
    if start >= 0:
        positions = start + factor * j
        valid = positions < high
    else:
        first = (-start) // factor
        positions = factor * (j - first)
        valid = (j >= first) & (positions < high)
    return torch.where(valid, positions, torch.full_like(positions, size))


def segment_volume(model, volume: torch.Tensor, batch_size: int = 10, progress: bool = True,
                   segment_size: int | Sequence[int] | None = None,
                   roi_mask: torch.Tensor | None = None, precision: str = "fp32",
                   compile: bool = False) -> torch.Tensor:
    """Class probabilities (num_labels, D, H, W) for `volume` (C, D, H, W), every voxel predicted.

    segment_size: normal-pathway segment per axis (default config.inference_segment_size).
    roi_mask: optional (D, H, W) mask; tiles whose normal segment holds no mask voxel are skipped (their
        outputs stay 0), as the original does with a brain mask.
    precision: "fp32" (exact), "bf16" (autocast; an explicit speed/accuracy trade, see the module docstring) or
        "auto" (bf16 only where the hardware has it natively, `medhub.precision`).
    compile: run a torch.compile'd frozen copy of the model (same function; see the module docstring).
    """
    config = model.config
    _check_volume(model, volume, roi_mask)
    precision = resolve_precision(check_precision(precision), next(model.parameters()).device.type)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size={batch_size!r}: expected an integer >= 1")
    segment = as_triple(segment_size if segment_size is not None else config.inference_segment_size, "segment_size")
    geometry = model.geometry
    output = geometry.output_size(segment)
    if min(output) < 1:
        raise InputError(f"segment_size={segment}: must be at least the receptive field {model.receptive_field}")
    margin_low = tuple((s - o) // 2 for s, o in zip(segment, output))
    margin_high = tuple(s - o - m for s, o, m in zip(segment, output, margin_low))
    shape = tuple(volume.shape[1:])
    smallest = tuple(max(lo, hi) + 1 for lo, hi in zip(margin_low, margin_high))
    if any(n < m for n, m in zip(shape, smallest)):
        raise InputError(f"volume: spatial size {shape} is too small to mirror-pad for this model; "
                         f"the minimum is {smallest}")

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    padded = _pad(volume.to(device=device, dtype=dtype), margin_low, margin_high, segment)
    mask = _pad(roi_mask.to(device=device, dtype=dtype)[None], margin_low, margin_high, segment)[0] \
        if roi_mask is not None else None
    with_border = _with_border_slot(padded)
    size = tuple(padded.shape[1:])
    starts = [tile_starts(n, s, o) for n, s, o in zip(size, segment, output)]
    tiles = [(a, b, c) for c in starts[2] for b in starts[1] for a in starts[0]]
    if mask is not None:
        tiles = [t for t in tiles if mask[_box(t, segment)].any()]

    probs = torch.zeros((config.num_labels,) + size, dtype=dtype, device=device)
    network = None
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            batches = range(0, len(tiles), batch_size)
            for first in tqdm(batches, desc="DeepMedic segments", disable=not progress, unit="batch"):
                batch = tiles[first:first + batch_size]
                # a compiled graph has one batch shape: the last batch is filled up with copies of its first tile
                filled = batch + batch[:1] * (batch_size - len(batch)) if compile else batch
                normal = torch.stack([padded[(slice(None),) + _box(t, segment)] for t in filled])
                subs = [torch.stack([_subsampled(with_border, t, f, n, model.receptive_field) for t in filled])
                        for f, n in zip(config.subsample_factors, geometry.segment_sizes(output)[1:])]
                kwargs = {"subsampled_values": subs if subs else None}
                if network is None:
                    network = optimize_for_inference(model, normal, channels_last=False, fuse_bn=False,
                                                     compile=True, precision=precision, **kwargs) \
                        if compile else model
                with precision_context(precision, device.type):
                    logits = network(normal, **kwargs).logits[:len(batch)]
                batch_probs = torch.softmax(logits.to(dtype), dim=1)
                for tile, p in zip(batch, batch_probs):
                    low = tuple(t + m for t, m in zip(tile, margin_low))
                    probs[(slice(None),) + _box(low, output)] = p
    finally:
        model.train(was_training)
    return probs[(slice(None),) + tuple(slice(m, m + n) for m, n in zip(margin_low, shape))].cpu()


def _check_volume(model, volume, roi_mask) -> None:
    if not isinstance(volume, torch.Tensor) or volume.ndim != 4:
        got = tuple(volume.shape) if isinstance(volume, torch.Tensor) else type(volume).__name__
        raise InputError(f"volume: expected a (channels, D, H, W) tensor, got {got}")
    model.validate_pixel_values(volume[None], spatial_dims=3, name="volume")
    if roi_mask is not None and (not isinstance(roi_mask, torch.Tensor) or roi_mask.shape != volume.shape[1:]):
        got = tuple(roi_mask.shape) if isinstance(roi_mask, torch.Tensor) else type(roi_mask).__name__
        raise InputError(f"roi_mask: expected a tensor of shape {tuple(volume.shape[1:])}, got {got}")


def _pad(x: torch.Tensor, low: Triple, high: Triple, segment: Triple) -> torch.Tensor:
    """Reflect-pad (C, D, H, W) by low/high; then, if still smaller than a segment, pad the high end further."""
    x = F.pad(x[None], (low[2], high[2], low[1], high[1], low[0], high[0]), mode="reflect")[0]
    extra = [max(0, s - n) for s, n in zip(segment, x.shape[1:])]
    if any(extra):
        x = F.pad(x[None], (0, extra[2], 0, extra[1], 0, extra[0]), mode="replicate")[0]
    return x


def _with_border_slot(x: torch.Tensor) -> torch.Tensor:
    """x with one extra voxel at the end of every axis holding each channel's border intensity."""
    corners = x[:, [0, -1]][:, :, [0, -1]][:, :, :, [0, -1]]
    border = corners.flatten(1).mean(dim=1)
    out = border.view(-1, 1, 1, 1).expand(x.shape[0], *(n + 1 for n in x.shape[1:])).clone()
    out[:, :-1, :-1, :-1] = x
    return out


def _subsampled(with_border: torch.Tensor, tile: Triple, factor: Sequence[int], count: Triple,
                receptive_field: Triple) -> torch.Tensor:
    size = [n - 1 for n in with_border.shape[1:]]
    index = [subsampled_indices(t + subsampled_offset(f, r), f, c, s).to(with_border.device)
             for t, f, c, s, r in zip(tile, factor, count, size, receptive_field)]
    return with_border[:, index[0][:, None, None], index[1][None, :, None], index[2][None, None, :]]


def _box(start: Sequence[int], size: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(a, a + n) for a, n in zip(start, size))
