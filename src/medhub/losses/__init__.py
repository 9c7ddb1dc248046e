"""Segmentation losses: the U-Net paper's weighted cross-entropy with its border weight map, soft Dice, Dice + CE."""

from .dice import DiceCELoss, DiceLoss, one_hot, soft_dice_loss
from .segmentation_loss import SEGMENTATION_LOSSES, crop_to_output, segmentation_loss
from .unet_weight_map import (
    border_distances,
    class_balance_weights,
    instances_from_mask,
    unet_weight_map,
    weighted_cross_entropy,
)

__all__ = [
    "SEGMENTATION_LOSSES",
    "DiceCELoss",
    "DiceLoss",
    "border_distances",
    "class_balance_weights",
    "crop_to_output",
    "instances_from_mask",
    "one_hot",
    "segmentation_loss",
    "soft_dice_loss",
    "unet_weight_map",
    "weighted_cross_entropy",
]
