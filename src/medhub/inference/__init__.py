"""Whole-image inference: sliding window ('same'-padding nets), overlap-tile (valid-padding nets), flip TTA, and
cell instances from a membrane probability map (seeded watershed)."""

from .membrane_watershed import membrane_watershed, watershed_options
from .overlap_tile import mirror_pad, overlap_tile_inference
from .sliding_window import gaussian_importance_map, sliding_window_inference, window_starts
from .tta import flip_tta

__all__ = [
    "flip_tta",
    "gaussian_importance_map",
    "membrane_watershed",
    "mirror_pad",
    "overlap_tile_inference",
    "sliding_window_inference",
    "watershed_options",
    "window_starts",
]
