"""VGG (Simonyan & Zisserman 2015) with torchvision's state-dict keys, for fine-tuning ImageNet weights.

`features.<idx>` follows torchvision's Sequential numbering exactly (conv, [BN], ReLU, ..., max pool), and the
ImageNet head is `classifier.0/.3/.6` (Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear), so torchvision
checkpoints load without renaming. The task model extends the backbone so these keys stay flat.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention

from ...layers.classifier_utils import FineTuneMixin, PooledClassifierHead, RadiographClassifier, TorchvisionInit
from ...modeling_utils import MedPreTrainedModel, Paper
from .configuration_vgg import POOL, VGGConfig

IMAGENET_POOL_SIZE = 7  # the imagenet head sees a 7x7 map whatever the input size (adaptive pooling)
MIN_INPUT_SIZE = 32  # five 2x2 max pools: smaller inputs vanish before the head

PAPER_BIBTEX = """@inproceedings{simonyan2015very,
  title     = {Very Deep Convolutional Networks for Large-Scale Image Recognition},
  author    = {Simonyan, Karen and Zisserman, Andrew},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2015}
}"""


def make_features(layout: tuple, in_channels: int, batch_norm: bool) -> nn.Sequential:
    """torchvision's `make_layers`: the index of each module is part of the state-dict key."""
    layers: list[nn.Module] = []
    width = in_channels
    for item in layout:
        if item == POOL:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(width, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        width = item
    return nn.Sequential(*layers)


class VGGPreTrainedModel(TorchvisionInit, RadiographClassifier, MedPreTrainedModel):
    config_class = VGGConfig
    base_model_prefix = "vgg"
    linear_init_std = 0.01  # torchvision's VGG: N(0, 0.01) linear layers
    paper = Paper("Very Deep Convolutional Networks for Large-Scale Image Recognition",
                  "https://arxiv.org/abs/1409.1556", PAPER_BIBTEX,
                  "VGG (Simonyan & Zisserman, 2015): stacks of 3x3 convolutions and max pooling; here with "
                  "torchvision's layout and keys (with or without batch norm) so ImageNet weights can be fine-tuned "
                  "on medical images.")


class VGGModel(VGGPreTrainedModel):
    """The backbone: the convolutional `features`; returns the last map and its global average."""

    def __init__(self, config: VGGConfig):
        super().__init__(config)
        self.features = make_features(config.layout, config.in_channels, config.batch_norm)
        self.num_features = [w for w in config.layout if w != POOL][-1]
        if type(self) is VGGModel:  # the task subclass adds its head, then calls post_init() once
            self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """hidden_states: the output of each of the five stages (after its max pool; strides 2 to 32)."""
        output_hidden_states, return_dict = self.output_options(output_hidden_states, return_dict)
        self.validate_pixel_values(pixel_values, spatial_dims=2, min_size=MIN_INPUT_SIZE)
        x = pixel_values
        hidden_states = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                hidden_states.append(x)
        pooled = x.mean(dim=(2, 3))
        hidden = tuple(hidden_states) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (x, pooled, hidden) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=x, pooler_output=pooled, hidden_states=hidden)


class VGGForImageClassification(PooledClassifierHead, FineTuneMixin, VGGModel):
    """VGG with torchvision's ImageNet head (`classifier.0/.3/.6`) or a small global-average-pooling head.

    For freeze_backbone()/parameter_groups() the head is the whole `classifier` (with the imagenet head also
    the pretrained, ImageNet-specific `classifier.0/.3`) and the backbone is the convolutional `features`.
    """

    head_module_names = ("classifier",)

    def __init__(self, config: VGGConfig):
        super().__init__(config)
        if config.classifier_type == "imagenet":
            self.avgpool = nn.AdaptiveAvgPool2d(IMAGENET_POOL_SIZE)
            hidden = config.classifier_hidden
            self.classifier = nn.Sequential(
                nn.Linear(self.num_features * IMAGENET_POOL_SIZE**2, hidden), nn.ReLU(inplace=True),
                nn.Dropout(config.drop_rate),
                nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(config.drop_rate),
                nn.Linear(hidden, config.num_labels),
            )
        else:
            self.dropout = nn.Dropout(config.drop_rate)
            self.classifier = nn.Linear(self.num_features, config.num_labels)
        self.post_init()

    def head_logits(self, features) -> torch.Tensor:
        if self.config.classifier_type == "imagenet":
            return self.classifier(torch.flatten(self.avgpool(features.last_hidden_state), 1))
        return self.classifier(self.dropout(features.pooler_output))
