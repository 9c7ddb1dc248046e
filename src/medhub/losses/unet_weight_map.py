"""The U-Net paper's pixel-wise loss weight map and the weighted cross-entropy that uses it.

Ronneberger et al. (2015), eq. 2: touching cells of the same class are separated by thin background
gaps that the network must learn, so background pixels between two cells get a large weight

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

with d1, d2 the distances to the nearest and the second nearest cell, w0 = 10 and sigma ~ 5 pixels.
w_c balances the class frequencies. The map is computed once per training image from an instance
label image (the data pipeline's job, numpy/scipy on CPU) and handed to the loss with the labels.

Choices made here, where the paper is silent:
- w_c(x) = N / (K * n_k) for a pixel of class k (n_k pixels of that class, N pixels, K classes
  present): inverse frequency normalised so that w_c averages to 1 over the image;
- the border term is added on background pixels only (inside a cell d1 = 0 and the term would mark
  cell interiors near neighbours, which the paper's Fig. 3d does not show); distances are Euclidean,
  in pixels (`scipy.ndimage.distance_transform_edt`), to the nearest pixel of each cell;
- the weighted cross-entropy is the mean over pixels of w(x) * CE(x), so a map of ones gives the
  ordinary mean cross-entropy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..errors import InputError

PAPER_W0 = 10.0
PAPER_SIGMA = 5.0


def instances_from_mask(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Label the connected components of a binary foreground mask: 0 background, 1..n the cells.

    `connectivity` 1 joins pixels sharing a face (4-neighbourhood in 2D), `mask.ndim` also diagonals.
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise InputError(f"mask: expected a 2-D or 3-D array, got shape {mask.shape}")
    if not 1 <= connectivity <= mask.ndim:
        raise InputError(f"connectivity={connectivity}: expected 1..{mask.ndim}")
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    instances, _ = ndimage.label(mask > 0, structure=structure)
    return instances.astype(np.int32)


def class_balance_weights(classes: np.ndarray) -> np.ndarray:
    """w_c per pixel: N / (K * n_k) for a pixel of class k; averages to 1 over the image."""
    classes = np.asarray(classes)
    values, counts = np.unique(classes, return_counts=True)
    per_class = classes.size / (len(values) * counts.astype(np.float64))
    return per_class[np.searchsorted(values, classes)]


def border_distances(instances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d1, d2): Euclidean distance of every pixel to the nearest and the second nearest instance.

    Pixels of an instance are at distance 0 from it. With fewer than two instances the missing
    distances are +inf.
    """
    instances = np.asarray(instances)
    d1 = np.full(instances.shape, np.inf)
    d2 = np.full(instances.shape, np.inf)
    for label in np.unique(instances):
        if label == 0:
            continue
        distance = ndimage.distance_transform_edt(instances != label)
        d2 = np.minimum(d2, np.maximum(d1, distance))
        d1 = np.minimum(d1, distance)
    return d1, d2


def unet_weight_map(instances: np.ndarray, w0: float = PAPER_W0, sigma: float = PAPER_SIGMA,
                    classes: np.ndarray | None = None) -> np.ndarray:
    """The paper's weight map w(x) for an instance label image (0 background, 1..n cells), float32.

    `classes` is the class of every pixel for w_c (default: foreground = instances > 0).
    """
    instances = np.asarray(instances)
    if instances.ndim not in (2, 3) or not np.issubdtype(instances.dtype, np.integer):
        raise InputError(f"instances: expected a 2-D or 3-D integer label image, got {instances.dtype} "
                         f"array of shape {instances.shape}")
    if sigma <= 0:
        raise InputError(f"sigma={sigma}: expected a positive distance in pixels")
    classes = (instances > 0).astype(np.int64) if classes is None else np.asarray(classes)
    if classes.shape != instances.shape:
        raise InputError(f"classes: shape {classes.shape} differs from instances {instances.shape}")
    weights = class_balance_weights(classes)
    d1, d2 = border_distances(instances)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))  # exp(-inf) = 0 with < 2 cells
    weights = weights + np.where(instances == 0, border, 0.0)
    return weights.astype(np.float32)


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                           weight_map: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pixels of weight_map(x) * softmax cross-entropy(x); plain mean CE without a map.

    logits (N, C, *spatial), labels (N, *spatial) class indices, weight_map (N, *spatial).
    """
    pixel_loss = F.cross_entropy(logits, labels, reduction="none")
    if weight_map is None:
        return pixel_loss.mean()
    if weight_map.shape != pixel_loss.shape:
        raise InputError(f"weight_map: expected shape {tuple(pixel_loss.shape)} (the labels' shape), "
                         f"got {tuple(weight_map.shape)}")
    return (weight_map.to(pixel_loss.dtype) * pixel_loss).mean()
