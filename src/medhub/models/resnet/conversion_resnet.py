"""Convert torchvision's ImageNet ResNet state dicts (resnet18..resnet152) into medhub models.

The keys are already the same (see modeling_resnet), so conversion is a strict check of the layout, the
first convolution adapted to `in_channels`, and a new `fc` unless the 1000 ImageNet classes are kept.
Reading the checkpoint file is left to the caller (e.g. `safetensors.torch.load_file`, or
`torch.load(path, weights_only=True)` for a trusted .pth): medhub itself never unpickles.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...errors import ConfigError
from ...layers.weight_transfer import IMAGENET_CLASSES, converted_fields, imagenet_layout, transfer_weights
from .configuration_resnet import RESNET_DEPTHS, ResNetConfig
from .modeling_resnet import ResNetForImageClassification

ARCHS = {f"resnet{depth}": {"depth": depth} for depth in RESNET_DEPTHS}


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], arch: str, num_labels: int | None = None,
                       in_channels: int | None = None, id2label: dict[int, str] | None = None,
                       problem_type: str | None = None) -> ResNetForImageClassification:
    """A medhub ResNet with the weights of a torchvision ImageNet `state_dict` of architecture `arch`.

    num_labels None or 1000 keeps the ImageNet `fc`; any other count gets a new, randomly initialised `fc`.
    in_channels None keeps RGB; 1 sums the first-layer filters over RGB (greyscale X-rays).
    """
    if arch not in ARCHS:
        raise ConfigError(f"arch={arch!r}: expected one of {list(ARCHS)}")
    config = ResNetConfig(**ARCHS[arch], problem_type=problem_type,
                          **converted_fields(num_labels, id2label, in_channels))
    keep_head = config.num_labels == IMAGENET_CLASSES
    config.weights_info = {
        "converted_from": f"torchvision {arch}",
        "pretrained_on": "ImageNet-1k",
        "head": "ImageNet fc kept" if keep_head else f"new fc of {config.num_labels} outputs (random, to be trained)",
    }
    model = ResNetForImageClassification(config)
    layout = imagenet_layout(ResNetForImageClassification, ResNetConfig, **ARCHS[arch])
    transfer_weights(model, state_dict, layout, first_conv="conv1.weight", new_head=() if keep_head else ("fc.",),
                     source=f"torchvision {arch} state dict")
    return model.eval()
