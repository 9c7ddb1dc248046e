"""Fine-tuning helpers shared by the classifier families (CheXNet/DenseNet, ResNet, VGG)."""

from __future__ import annotations

from typing import ClassVar, Iterator

import torch
from torch import nn


def adapt_first_conv_weight(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt an RGB-pretrained first-conv weight (out, 3, *k) to `in_channels` input channels.

    1 channel: sum the filters over RGB, so a greyscale image replicated to RGB gives the same response
    (the usual way to reuse ImageNet weights on X-rays). Other counts: repeat the RGB filters cyclically and
    rescale by 3 / in_channels so the expected activation magnitude is kept.
    """
    if weight.shape[1] == in_channels:
        return weight.clone()
    if weight.shape[1] != 3:
        raise ValueError(f"adapt_first_conv_weight: expected a 3-channel (RGB) weight, got shape {tuple(weight.shape)}")
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_channels // 3)
    return weight.repeat(1, repeats, *([1] * (weight.ndim - 2)))[:, :in_channels] * (3.0 / in_channels)


class FineTuneMixin:
    """freeze_backbone()/unfreeze() and parameter groups for discriminative learning rates.

    A model using it names its classification head's attribute(s) in `head_module_names`; everything else
    is the backbone.
    """

    head_module_names: ClassVar[tuple[str, ...]] = ("classifier",)

    def head_parameters(self) -> Iterator[nn.Parameter]:
        for name in self.head_module_names:
            yield from getattr(self, name).parameters()

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return (p for p in self.parameters() if id(p) not in head)

    def freeze_backbone(self) -> None:
        """Train the head only (backbone parameters stop receiving gradients)."""
        for p in self.backbone_parameters():
            p.requires_grad_(False)

    def unfreeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(True)

    def parameter_groups(self, backbone_lr: float, head_lr: float, weight_decay: float = 0.0) -> list[dict]:
        """Optimizer parameter groups: a smaller learning rate for the pretrained backbone than for the new head."""
        return [
            {"params": [p for p in self.backbone_parameters() if p.requires_grad], "lr": backbone_lr,
             "weight_decay": weight_decay, "name": "backbone"},
            {"params": [p for p in self.head_parameters() if p.requires_grad], "lr": head_lr,
             "weight_decay": weight_decay, "name": "head"},
        ]
