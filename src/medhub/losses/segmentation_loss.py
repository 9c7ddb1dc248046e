"""The loss a segmentation task model computes from `labels`, chosen by its config's `loss` field.

Both U-Net families call `segmentation_loss`; it checks the labels against the logits and, for
valid-padding networks whose output is smaller than the input, centre-crops labels (and weight maps)
given at the input size to the output size: the output pixel (i, j) predicts the input pixel at the
centre of its receptive field, which is exactly the centre crop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import InputError
from ..layers.cropping import center_crop
from .dice import DiceCELoss
from .unet_weight_map import weighted_cross_entropy

SEGMENTATION_LOSSES = ("weighted_ce", "ce", "dice_ce")


def crop_to_output(target: torch.Tensor, output_spatial: tuple[int, ...], name: str = "labels") -> torch.Tensor:
    """Centre-crop `target` (N, *spatial) to `output_spatial`; InputError when it is smaller or misshaped."""
    if not isinstance(target, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(target).__name__}")
    if target.ndim != len(output_spatial) + 1:
        raise InputError(f"{name}: expected shape (batch, {', '.join('...' for _ in output_spatial)}) with "
                         f"{len(output_spatial)} spatial dims and no channel dim, got {tuple(target.shape)}")
    spatial = tuple(target.shape[1:])
    if spatial == tuple(output_spatial):
        return target
    if any(s < o for s, o in zip(spatial, output_spatial)):
        raise InputError(f"{name}: spatial size {spatial} is smaller than the model output {tuple(output_spatial)}; "
                         "give labels at the input size (centre-cropped here) or at the output size")
    return center_crop(target.unsqueeze(1), output_spatial).squeeze(1)


def segmentation_loss(kind: str, logits: torch.Tensor, labels: torch.Tensor,
                      weight_map: torch.Tensor | None = None) -> torch.Tensor:
    """'weighted_ce' (weight map if given, else plain CE), 'ce' or 'dice_ce' of `logits` (N, C, *spatial)."""
    output_spatial = tuple(logits.shape[2:])
    labels = crop_to_output(labels, output_spatial, "labels")
    if labels.shape[0] != logits.shape[0]:
        raise InputError(f"labels: batch size {labels.shape[0]} differs from pixel_values' {logits.shape[0]}")
    if labels.is_floating_point():
        raise InputError(f"labels: expected integer class indices, got {labels.dtype}")
    num_classes = logits.shape[1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels: values must be in [0, {num_classes - 1}] (num_labels={num_classes}), "
                         f"got [{int(labels.min())}, {int(labels.max())}]")
    labels = labels.long()
    if weight_map is not None:
        if kind != "weighted_ce":
            raise InputError(f"weight_map: only used with loss='weighted_ce', the config says loss={kind!r}")
        weight_map = crop_to_output(weight_map, output_spatial, "weight_map")
    if kind == "weighted_ce":
        return weighted_cross_entropy(logits, labels, weight_map)
    if kind == "ce":
        return F.cross_entropy(logits, labels)
    if kind == "dice_ce":
        return DiceCELoss()(logits, labels)
    raise InputError(f"loss={kind!r}: expected one of {SEGMENTATION_LOSSES}")
