"""Centre cropping, used by valid-padding networks to align feature maps (U-Net skips, DeepMedic pathways)."""

from __future__ import annotations

import torch


def center_crop(x: torch.Tensor, size: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Crop the trailing spatial dims of `x` (N, C, *spatial) to `size`, centred (extra voxel on the low side)."""
    spatial = x.shape[2:]
    if len(size) != len(spatial):
        raise ValueError(f"center_crop: size {tuple(size)} does not match spatial dims of {tuple(x.shape)}")
    slices = [slice(None), slice(None)]
    for have, want in zip(spatial, size):
        if want > have:
            raise ValueError(f"center_crop: cannot crop {tuple(spatial)} to larger {tuple(size)}")
        start = (have - want) // 2
        slices.append(slice(start, start + want))
    return x[tuple(slices)]
