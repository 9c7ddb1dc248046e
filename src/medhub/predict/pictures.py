"""Pictures of predictions: labels and cell instances tinted over the grey image, instance outlines."""

from __future__ import annotations

import numpy as np

# Overlay colours for labels 1, 2, ... (label 0 is background and stays the image).
PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255],
                    [255, 128, 0], [128, 0, 255]], dtype=np.float64)


def label_overlay(display: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8: the grey image with each label > 0 tinted in its palette colour."""
    rgb = np.repeat(display[..., None].astype(np.float64), 3, axis=2)
    for value in np.unique(labels):
        if value > 0:
            mask = labels == value
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * PALETTE[(int(value) - 1) % len(PALETTE)]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def instance_overlay(display: np.ndarray, instances: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8: the grey image with every instance > 0 tinted in its own colour (fixed per label value), so
    that neighbouring cells are told apart; label 0 (the watershed lines) stays grey."""
    colours = instance_colours(instances)
    rgb = np.repeat(display[..., None].astype(np.float64), 3, axis=2)
    inside = instances > 0
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colours[instances[inside]]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def instance_colours(instances: np.ndarray) -> np.ndarray:
    """One colour (float RGB) per label value 0..max, fixed by the value (seeded), bright enough to see."""
    return np.random.default_rng(0).integers(40, 256, size=(int(instances.max()) + 1, 3)).astype(np.float64)


def instance_outlines(display: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """RGB uint8: the grey image with the one-pixel inner outline of every instance > 0 in its own colour (the
    same colours as `instance_overlay`); the inside of each instance stays the image, so stain and texture show."""
    from skimage.segmentation import find_boundaries

    rgb = np.repeat(display[..., None], 3, axis=2).astype(np.uint8)
    edge = find_boundaries(instances, connectivity=1, mode="inner") & (instances > 0)
    rgb[edge] = instance_colours(instances)[instances[edge]].astype(np.uint8)
    return rgb


__all__ = ["PALETTE", "instance_colours", "instance_outlines", "instance_overlay", "label_overlay"]
