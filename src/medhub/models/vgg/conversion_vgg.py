"""Convert torchvision's ImageNet VGG state dicts (vgg11..vgg19, vgg11_bn..vgg19_bn) into medhub models.

The keys are already the same (see modeling_vgg), so conversion is a strict check of the layout, the first
convolution adapted to `in_channels`, and the head: kept whole for the 1000 ImageNet classes; otherwise
`classifier.0/.3` kept and a new `classifier.6`, or, with classifier_type "gap", the ImageNet head
dropped for a small new one. Reading the checkpoint file is left to the caller (medhub never unpickles).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...errors import ConfigError
from ...layers.weight_transfer import IMAGENET_CLASSES, converted_fields, imagenet_layout, transfer_weights
from .configuration_vgg import VGG_LAYOUTS, VGGConfig
from .modeling_vgg import VGGForImageClassification

ARCHS = {
    f"vgg{depth}{suffix}": {"depth": depth, "batch_norm": suffix == "_bn"}
    for suffix in ("", "_bn") for depth in VGG_LAYOUTS
}


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], arch: str, num_labels: int | None = None,
                       in_channels: int | None = None, classifier_type: str = "imagenet",
                       id2label: dict[int, str] | None = None,
                       problem_type: str | None = None) -> VGGForImageClassification:
    """A medhub VGG with the weights of a torchvision ImageNet `state_dict` of architecture `arch`.

    num_labels None or 1000 (imagenet head) keeps the whole ImageNet classifier; another count re-initialises
    `classifier.6` only; classifier_type "gap" replaces the whole classifier by a small new one.
    in_channels None keeps RGB; 1 sums the first-layer filters over RGB (greyscale X-rays).
    """
    if arch not in ARCHS:
        raise ConfigError(f"arch={arch!r}: expected one of {list(ARCHS)}")
    config = VGGConfig(**ARCHS[arch], classifier_type=classifier_type, problem_type=problem_type,
                       **converted_fields(num_labels, id2label, in_channels))
    if classifier_type == "gap":
        new_head, head = ("classifier.",), f"new global-average-pooling head of {config.num_labels} outputs"
    elif config.num_labels == IMAGENET_CLASSES:
        new_head, head = (), "ImageNet classifier kept"
    else:
        new_head = ("classifier.6.",)
        head = f"ImageNet classifier.0/.3 kept, new classifier.6 of {config.num_labels} outputs"
    config.weights_info = {"converted_from": f"torchvision {arch}", "pretrained_on": "ImageNet-1k", "head": head}
    model = VGGForImageClassification(config)
    layout = imagenet_layout(VGGForImageClassification, VGGConfig, **ARCHS[arch])
    transfer_weights(model, state_dict, layout, first_conv="features.0.weight", new_head=new_head,
                     source=f"torchvision {arch} state dict")
    return model.eval()
