"""From class probabilities to what users see: label maps, and cell instances for weights that name them.

One home for both, so that `medhub predict`, `medhub evaluate`, the pipelines and the Spaces turn the same
probabilities into the same labels and cells.
"""

from __future__ import annotations

import numpy as np
import torch

from ..weights_info import read_weights_info
from .membrane_watershed import membrane_watershed, watershed_options


def labels_from_probabilities(probs: torch.Tensor) -> np.ndarray:
    """(K, *spatial) -> label map: argmax over K labels, or probability > 0.5 for one label."""
    labels = (probs[0] > 0.5).long() if probs.shape[0] == 1 else probs.argmax(dim=0)
    return labels.numpy().astype(np.uint8 if max(probs.shape[0], 2) <= 256 else np.int16)


def instance_options(model) -> dict | None:
    """The `membrane_watershed` keyword arguments saved with the weights (`weights_info["instances"]`), or None."""
    instances = read_weights_info(model.config).get("instances")
    return watershed_options(instances) if instances else None


def cell_instances(model, probs: torch.Tensor) -> np.ndarray | None:
    """Cell labels (H, W) from (2, H, W) membrane/cell probabilities when the weights name a post-processing."""
    options = instance_options(model)
    if options is None or probs.ndim != 3 or probs.shape[0] != 2:
        return None
    return membrane_watershed(np.asarray(probs[1]), **options)


__all__ = ["cell_instances", "instance_options", "labels_from_probabilities"]
