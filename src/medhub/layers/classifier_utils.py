"""What the classifier families (CheXNet/DenseNet, ResNet, VGG) share: their task and image processor
(`RadiographClassifier`), and the fine-tuning helpers (first-conv adaptation, `FineTuneMixin`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import nn
from transformers import initialization as init

from ..processing.radiograph import RadiographImageProcessor
from .classification_loss import classifier_output


class RadiographClassifier:
    """Mixed into each classifier family's PreTrainedModel: image classification of radiographs (DICOM window,
    MONOCHROME1 inversion, resize, normalisation: `RadiographImageProcessor`)."""

    pipeline_tag = "image-classification"
    processor_class = RadiographImageProcessor


class TorchvisionInit:
    """torchvision's initialisation of ResNet and VGG (He normal, fan_out convolutions; N(0, `linear_init_std`)
    linear layers when set, as VGG's), so that a model trained from scratch starts where torchvision's would."""

    linear_init_std: float | None = None

    def _init_weights(self, module: nn.Module) -> None:
        if torchvision_conv_init(module):
            return
        if self.linear_init_std is not None and isinstance(module, nn.Linear):
            init.normal_(module.weight, 0.0, self.linear_init_std)
            init.zeros_(module.bias)
            return
        super()._init_weights(module)


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


def torchvision_conv_init(module: nn.Module) -> bool:
    """torchvision's initialisation of its classifiers' convolutions (He normal, fan_out; zero bias); True when
    `module` is a 2D convolution (and was initialised)."""
    if not isinstance(module, nn.Conv2d):
        return False
    init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        init.zeros_(module.bias)
    return True


class PooledClassifierHead:
    """The task model's forward of torchvision-layout classifiers (ResNet, VGG): the backbone's features, then
    `head_logits(features)`, the loss of `config.problem_type` when labels are given."""

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None, **kwargs):
        _, return_dict = self.output_options(None, return_dict)
        features = super().forward(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        return classifier_output(self.head_logits(features), labels, self.config.problem_type,
                                 features.hidden_states, return_dict)

    def head_logits(self, features) -> torch.Tensor:
        raise NotImplementedError


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
