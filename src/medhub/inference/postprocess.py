"""From class probabilities to what users see: label maps, and instances (cells, nuclei) for weights that name
a post-processing in `weights_info["instances"]`:

- `{"method": "membrane_watershed", ...}`: cells of a (membrane, cell) map (EM; `membrane_watershed`);
- `{"method": "nuclei_watershed", ...}`: nuclei of a (background, nucleus) map, or of a (background, nucleus
  interior, nucleus boundary) map (`medhub.inference.nuclei`).

One home for both, so that `medhub predict`, `medhub evaluate`, the pipelines and the Spaces turn the same
probabilities into the same labels and instances.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..weights_info import read_weights_info
from .membrane_watershed import membrane_watershed, watershed_options
from .nuclei import nuclei_instances, nuclei_options

INSTANCE_METHODS = {"membrane_watershed": watershed_options, "nuclei_watershed": nuclei_options}


def labels_from_probabilities(probs: torch.Tensor) -> np.ndarray:
    """(K, *spatial) -> label map: argmax over K labels, or probability > 0.5 for one label."""
    labels = (probs[0] > 0.5).long() if probs.shape[0] == 1 else probs.argmax(dim=0)
    return labels.numpy().astype(np.uint8 if max(probs.shape[0], 2) <= 256 else np.int16)


def instance_method(instances, where: str = "weights_info.instances") -> tuple[str, dict]:
    """(method, its checked keyword arguments) of a `weights_info["instances"]` entry (ConfigError otherwise)."""
    method = instances.get("method", "membrane_watershed") if isinstance(instances, dict) else "membrane_watershed"
    if method not in INSTANCE_METHODS:
        raise ConfigError(f"{where}.method: expected one of {sorted(INSTANCE_METHODS)}, got {method!r}")
    return method, INSTANCE_METHODS[method](instances, where)


def instance_postprocessing(model) -> tuple[str, dict] | None:
    """(method, keyword arguments) of the post-processing saved with the weights (`weights_info["instances"]`),
    or None."""
    instances = read_weights_info(model.config).get("instances")
    return instance_method(instances) if instances else None


def instance_options(model) -> dict | None:
    """The keyword arguments of the post-processing saved with the weights, or None (see `instance_postprocessing`
    for its method)."""
    found = instance_postprocessing(model)
    return None if found is None else found[1]


def instances_from_probabilities(probs, method: str, options: dict) -> np.ndarray | None:
    """Instance labels (H, W) from per-label probabilities (K, H, W) by `method`; None when the map does not
    fit the method (membrane_watershed: K = 2; nuclei_watershed: K = 2 or 3)."""
    probs = np.asarray(probs)
    if probs.ndim != 3:
        return None
    if method == "membrane_watershed":
        return membrane_watershed(probs[1], **options) if probs.shape[0] == 2 else None
    if probs.shape[0] == 2:
        return nuclei_instances(probs[1], **options)
    if probs.shape[0] == 3:  # background, interior, boundary
        return nuclei_instances(np.clip(probs[1] + probs[2], 0.0, 1.0), probs[2], **options)
    return None


def cell_instances(model, probs: torch.Tensor) -> np.ndarray | None:
    """Instance labels (H, W) from (K, H, W) probabilities when the weights name a post-processing."""
    found = instance_postprocessing(model)
    return None if found is None else instances_from_probabilities(probs, *found)


__all__ = ["INSTANCE_METHODS", "cell_instances", "instance_method", "instance_options", "instance_postprocessing",
           "instances_from_probabilities", "labels_from_probabilities"]
