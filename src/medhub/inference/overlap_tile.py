"""The U-Net paper's overlap-tile strategy for valid-padding networks (Ronneberger et al. 2015, MICCAI, Fig. 2).

A valid-padding network maps an `input_tile` to a smaller `output_tile`; the difference is the context it
consumes, (input_tile - output_tile) / 2 voxels per side. To segment a whole image seamlessly, the output is
tiled without overlap and each output tile is predicted from the input tile around it; context missing at the
image border is extrapolated by mirroring the image. Because every output voxel is computed from exactly the
voxels a single forward pass would use, the result equals one pass over the mirror-padded whole image (when that
is a valid input size), without its memory cost.

Mirroring is reflection without repeating the edge voxel (numpy's 'reflect'), applied repeatedly when the
padding is larger than the image so that any context size works.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..errors import InputError
from ._utils import as_spatial_tuple, check_batch_size, check_image, check_output, window_slices

__all__ = ["mirror_pad", "overlap_tile_inference"]


def _reflect_indices(size: int, low: int, high: int, device) -> torch.Tensor:
    """Source index of each position in [-low, size + high) under repeated reflection about the border voxels."""
    idx = torch.arange(-low, size + high, device=device)
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = idx.abs() % period
    return torch.where(idx >= size, period - idx, idx)


def mirror_pad(image: torch.Tensor, pads: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Mirror-pad the spatial axes of (N, C, *spatial) by (low, high) voxels each, any amount."""
    for axis, (low, high) in enumerate(pads, start=2):
        if low or high:
            image = image.index_select(axis, _reflect_indices(image.shape[axis], low, high, image.device))
    return image


def overlap_tile_inference(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    output_tile: int | Sequence[int],
    input_tile: int | Sequence[int],
    batch_size: int = 4,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Predict (N, C_out, *spatial) for a whole image with a valid-padding model mapping input_tile -> output_tile.

    `model_fn` receives (B, C, *input_tile) and must return (B, C_out, *output_tile). Tiles are moved to `device`
    (default: the image's), where the output is assembled and returned.
    """
    image = check_image(image)
    n_spatial = image.ndim - 2
    out_t = as_spatial_tuple(output_tile, n_spatial, "output_tile")
    in_t = as_spatial_tuple(input_tile, n_spatial, "input_tile")
    context = []
    for o, i in zip(out_t, in_t):
        if i < o or (i - o) % 2:
            raise InputError(
                f"input_tile {in_t} and output_tile {out_t}: expected input >= output with an even difference "
                "(the context, (input - output) / 2 per side, must be a whole number of voxels)"
            )
        context.append((i - o) // 2)
    check_batch_size(batch_size)
    device = torch.device(device) if device is not None else image.device

    with torch.inference_mode():
        spatial = tuple(image.shape[2:])
        n_tiles = [math.ceil(s / o) for s, o in zip(spatial, out_t)]
        covered = tuple(n * o for n, o in zip(n_tiles, out_t))  # output extent, >= image, cropped at the end
        padded = mirror_pad(image, [(c, c + cov - s) for c, cov, s in zip(context, covered, spatial)])
        starts = [[k * o for k in range(n)] for n, o in zip(n_tiles, out_t)]
        # Output tile at `start` reads the input tile at the same start of the padded image (shifted by context).
        out_windows = window_slices(starts, out_t)
        jobs = [(n, w) for n in range(image.shape[0]) for w in out_windows]

        output = None
        for first in tqdm(range(0, len(jobs), batch_size), desc="overlap-tile", disable=not progress):
            batch = jobs[first : first + batch_size]
            x = torch.stack(
                [padded[(n, slice(None), *(slice(s.start, s.start + i) for s, i in zip(w, in_t)))] for n, w in batch]
            ).to(device, non_blocking=True)
            pred = model_fn(x)
            check_output(pred, len(batch), out_t, f"a valid-padding model mapping input_tile {in_t} to output_tile")
            if output is None:
                output = torch.empty((image.shape[0], pred.shape[1], *covered), dtype=pred.dtype, device=device)
            for (n, w), p in zip(batch, pred):
                output[(n, slice(None), *w)] = p
        return output[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
