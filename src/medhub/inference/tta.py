"""Test-time augmentation by flipping ("mirroring" in nnU-Net, Isensee et al. 2021, Nat. Methods).

For every subset of `spatial_axes` (the empty subset included, so 2^k passes for k axes) the input is flipped,
predicted, turned into probabilities and flipped back; the probabilities are averaged. Averaging probabilities
rather than logits keeps the result a proper distribution and matches nnU-Net. Anatomy is not mirror-symmetric
in general (left/right organs!), so choose axes along which the training data were flipped.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch

from ..errors import InputError
from ._utils import check_image

__all__ = ["flip_tta"]


def _activate(logits: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation == "softmax":
        return torch.softmax(logits, dim=1)
    if activation == "sigmoid":
        return torch.sigmoid(logits)
    return logits


def flip_tta(
    model_fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    spatial_axes: Sequence[int] | None = None,
    activation: str | None = "softmax",
    masks: Sequence[torch.Tensor] = (),
    dense: bool = True,
) -> torch.Tensor:
    """Average of `activation(model_fn(flip(image)))` flipped back, over all flips along `spatial_axes`.

    `spatial_axes` count spatial dimensions from 0 (0 = tensor dim 2); default: all of them. `activation` is
    'softmax' (over channels, mutually exclusive labels), 'sigmoid' (multi-label) or None (average raw outputs).
    `model_fn` may itself be a sliding-window or overlap-tile call. `masks`: tensors of the image's spatial
    shape (e.g. a ROI mask) flipped along with the image and passed to `model_fn` after it. `dense=False`: the
    outputs have no spatial axes (a classifier's (N, K)), so they are averaged without flipping back.
    """
    image = check_image(image)
    n_spatial = image.ndim - 2
    axes = tuple(range(n_spatial)) if spatial_axes is None else tuple(spatial_axes)
    if len(set(axes)) != len(axes) or any(not 0 <= a < n_spatial for a in axes):
        raise InputError(f"spatial_axes: expected distinct indices in [0, {n_spatial}), got {spatial_axes!r}")
    if activation not in ("softmax", "sigmoid", None):
        raise InputError(f"activation: expected 'softmax', 'sigmoid' or None, got {activation!r}")

    with torch.inference_mode():
        total, count = None, 0
        for k in range(len(axes) + 1):
            for subset in itertools.combinations(axes, k):
                dims = [a + 2 for a in subset]
                x = image.flip(dims) if dims else image
                flipped = [m.flip([d - 2 for d in dims]) if dims else m for m in masks]
                probs = _activate(model_fn(x, *flipped), activation)
                probs = probs.flip(dims) if dims and dense else probs
                total = probs.clone() if total is None else total.add_(probs)
                count += 1
        return total / count
