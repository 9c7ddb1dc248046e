"""ResNet (He et al. 2016) with torchvision's state-dict keys, for fine-tuning ImageNet weights.

Keys are flat and public: `conv1`, `bn1`, `layer1.0.conv1`, ..., `layer2.0.downsample.0/1`, `fc`, the same
as torchvision's, so its checkpoints load without renaming. To keep them flat the task model *extends* the
backbone (`ResNetForImageClassification(ResNetModel)`) instead of wrapping it under a prefix.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention

from ...layers.classifier_utils import FineTuneMixin, PooledClassifierHead, RadiographClassifier, TorchvisionInit
from ...modeling_utils import MedPreTrainedModel, Paper
from .configuration_resnet import ResNetConfig

STAGE_WIDTHS = (64, 128, 256, 512)
STEM_WIDTH = 64
MIN_INPUT_SIZE = 32  # total stride of the network: below this the last stage sees less than one pixel

PAPER_BIBTEX = """@inproceedings{he2016deep,
  title     = {Deep Residual Learning for Image Recognition},
  author    = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing and Sun, Jian},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {770--778},
  year      = {2016}
}"""


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut: ResNet-18/34."""

    expansion = 1

    def __init__(self, in_width: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_width, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_width, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided: torchvision's v1.5), 1x1 expand by 4: ResNet-50/101/152."""

    expansion = 4

    def __init__(self, in_width: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_width, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _projection(in_width, width * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


def _projection(in_width: int, out_width: int, stride: int) -> nn.Sequential | None:
    """The 1x1 strided convolution + BN shortcut (keys downsample.0/1), only where the shape changes."""
    if stride == 1 and in_width == out_width:
        return None
    return nn.Sequential(nn.Conv2d(in_width, out_width, 1, stride=stride, bias=False), nn.BatchNorm2d(out_width))


class ResNetPreTrainedModel(TorchvisionInit, RadiographClassifier, MedPreTrainedModel):
    config_class = ResNetConfig
    base_model_prefix = "resnet"
    _no_split_modules = ["BasicBlock", "Bottleneck"]
    paper = Paper("Deep Residual Learning for Image Recognition",
                  "https://arxiv.org/abs/1512.03385", PAPER_BIBTEX,
                  "ResNet (He et al., 2016): residual blocks let very deep CNNs train; here with torchvision's layout "
                  "(v1.5) and keys so ImageNet weights can be fine-tuned on medical images.")


class ResNetModel(ResNetPreTrainedModel):
    """The backbone: stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool) and four stages; returns pooled features."""

    def __init__(self, config: ResNetConfig):
        super().__init__(config)
        block = BasicBlock if config.block_type == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(config.in_channels, STEM_WIDTH, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_width = STEM_WIDTH
        for index, (width, blocks) in enumerate(zip(STAGE_WIDTHS, config.stage_blocks)):
            stride = 1 if index == 0 else 2
            stage = []
            for b in range(blocks):
                stage.append(block(in_width, width, stride if b == 0 else 1))
                in_width = width * block.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = in_width
        if type(self) is ResNetModel:  # the task subclass adds its head, then calls post_init() once
            self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        """hidden_states: the stem output and each stage's output (5 maps, strides 4, 4, 8, 16, 32)."""
        self.validate_pixel_values(pixel_values, spatial_dims=2, min_size=MIN_INPUT_SIZE)
        output_hidden_states, return_dict = self.output_options(output_hidden_states, return_dict)
        x = self.maxpool(self.relu(self.bn1(self.conv1(pixel_values))))
        hidden_states = [x]
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            hidden_states.append(x)
        pooled = torch.flatten(self.avgpool(x), 1)
        hidden = tuple(hidden_states) if output_hidden_states else None
        if not return_dict:
            return tuple(v for v in (x, pooled, hidden) if v is not None)
        return BaseModelOutputWithPoolingAndNoAttention(last_hidden_state=x, pooler_output=pooled, hidden_states=hidden)


class ResNetForImageClassification(PooledClassifierHead, FineTuneMixin, ResNetModel):
    """ResNet with a dropout + linear head `fc` of `num_labels` outputs (torchvision's `fc` key)."""

    head_module_names = ("fc",)

    def __init__(self, config: ResNetConfig):
        super().__init__(config)
        self.dropout = nn.Dropout(config.drop_rate)
        self.fc = nn.Linear(self.num_features, config.num_labels)
        self.post_init()

    def head_logits(self, features) -> torch.Tensor:
        return self.fc(self.dropout(features.pooler_output))
