"""Soft Dice loss and Dice + cross-entropy for segmentation logits.

Soft Dice (Milletari et al. 2016, V-Net) compares softmax probabilities p with the one-hot target t per
sample and class: Dice = (2 sum p t + smooth) / (sum p + sum t + smooth). The loss is 1 - Dice averaged
over the classes kept and the batch. `smooth` keeps the ratio defined (and equal to 1, no loss) for a
class absent from both prediction and target. Dice + CE, the usual recipe of nnU-Net-style training and
the default of Attention U-Net here, adds the mean cross-entropy for well-behaved gradients early on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, *spatial) class indices -> (N, C, *spatial) float one-hot; InputError for out-of-range labels."""
    if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise InputError(f"labels: expected an integer tensor of class indices, got {labels.dtype}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise InputError(f"labels: values must be in [0, {num_classes - 1}], got [{int(labels.min())}, "
                         f"{int(labels.max())}]")
    return F.one_hot(labels.long(), num_classes).movedim(-1, 1).float()


def soft_dice_loss(probabilities: torch.Tensor, labels: torch.Tensor, smooth: float = 1.0,
                   include_background: bool = True) -> torch.Tensor:
    """1 - mean soft Dice of `probabilities` (N, C, *spatial) against `labels` (N, *spatial).

    `include_background=False` leaves class 0 out of the average (large background dominates otherwise).
    """
    if probabilities.ndim != labels.ndim + 1 or probabilities.shape[2:] != labels.shape[1:] \
            or probabilities.shape[0] != labels.shape[0]:
        raise InputError(f"labels: expected shape {(probabilities.shape[0], *probabilities.shape[2:])} for "
                         f"predictions of shape {tuple(probabilities.shape)}, got {tuple(labels.shape)}")
    target = one_hot(labels, probabilities.shape[1]).to(probabilities.dtype)
    if not include_background:
        if probabilities.shape[1] < 2:
            raise InputError("include_background=False needs at least 2 classes")
        probabilities, target = probabilities[:, 1:], target[:, 1:]
    dims = tuple(range(2, probabilities.ndim))
    intersection = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    dice = (2.0 * intersection + smooth) / (total + smooth)
    return 1.0 - dice.mean()


class DiceLoss(nn.Module):
    """Soft Dice loss on logits (softmax over dim 1)."""

    def __init__(self, smooth: float = 1.0, include_background: bool = True):
        super().__init__()
        self.smooth = smooth
        self.include_background = include_background

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return soft_dice_loss(logits.softmax(dim=1), labels, self.smooth, self.include_background)


class DiceCELoss(nn.Module):
    """dice_weight * soft Dice + ce_weight * mean cross-entropy, on logits."""

    def __init__(self, smooth: float = 1.0, include_background: bool = True, dice_weight: float = 1.0,
                 ce_weight: float = 1.0):
        super().__init__()
        self.dice = DiceLoss(smooth, include_background)
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, labels.long())
        return self.dice_weight * self.dice(logits, labels) + self.ce_weight * ce
