"""DenseNet building blocks (Huang et al. 2017) with torchvision's module names.

The names (`conv0`, `norm0`, `denseblock1.denselayer1.norm1`, `transition1.conv`, `norm5`, ...) are the
state-dict keys of torchvision's `densenet121`, so published DenseNet/CheXNet weights load without any
renaming beyond torchvision's own legacy `norm.1` -> `norm1` fix (done by the converter).
Every layer is BN -> ReLU -> conv ("pre-activation"), as in the paper.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


class DenseLayer(nn.Module):
    """Bottleneck layer: BN-ReLU-conv1x1 (bn_size * growth_rate) then BN-ReLU-conv3x3 (growth_rate).

    Takes the list of all earlier feature maps of the block and returns only its `growth_rate` new maps;
    the block concatenates them (the "dense" connectivity).
    """

    def __init__(self, in_features: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_features)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_features, bn_size * growth_rate, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)
        self.drop_rate = float(drop_rate)

    def forward(self, previous: list[torch.Tensor]) -> torch.Tensor:
        bottleneck = self.conv1(self.relu1(self.norm1(torch.cat(previous, dim=1))))
        new_features = self.conv2(self.relu2(self.norm2(bottleneck)))
        if self.drop_rate > 0:
            new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
        return new_features


class DenseBlock(nn.ModuleDict):
    """`num_layers` dense layers named `denselayer1..N`; output channels: in + num_layers * growth_rate."""

    def __init__(self, num_layers: int, in_features: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        for i in range(num_layers):
            layer = DenseLayer(in_features + i * growth_rate, growth_rate, bn_size, drop_rate)
            self.add_module(f"denselayer{i + 1}", layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compression) then 2x2 average pooling, between two dense blocks."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_features)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


def densenet_features(growth_rate: int, block_config: tuple[int, ...] | list[int], num_init_features: int,
                      bn_size: int, drop_rate: float, in_channels: int,
                      compression: float = 0.5) -> tuple[nn.Sequential, int]:
    """The DenseNet feature extractor and its number of output channels.

    Same modules and order as torchvision's `DenseNet.features` (stem conv0/norm0/relu0/pool0, dense blocks
    and transitions, final norm5), plus a parameter-free `relu5`: torchvision applies that last ReLU in
    `forward`; as a module it makes the final feature maps (what CAM and Grad-CAM read) a hookable output.
    """
    stem = [
        ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
        ("norm0", nn.BatchNorm2d(num_init_features)),
        ("relu0", nn.ReLU(inplace=True)),
        ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
    ]
    features = nn.Sequential(OrderedDict(stem))
    channels = num_init_features
    for i, num_layers in enumerate(block_config):
        features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate))
        channels += num_layers * growth_rate
        if i != len(block_config) - 1:
            out = int(channels * compression)
            features.add_module(f"transition{i + 1}", Transition(channels, out))
            channels = out
    features.add_module("norm5", nn.BatchNorm2d(channels))
    features.add_module("relu5", nn.ReLU(inplace=False))
    return features, channels
