"""An independent DenseNet forward (eval mode) computed straight from a torchvision-layout state dict.

Used by the converter tests as ground truth: it shares no code with medhub's modules, and reads the
architecture (blocks, layers per block) from the key names alone, so a wrong key mapping or a wrong layer
order in medhub shows up as different outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BN_EPS = 1e-5


def _bn_relu(x: torch.Tensor, sd: dict, prefix: str) -> torch.Tensor:
    x = F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                     sd[f"{prefix}.bias"], training=False, eps=BN_EPS)
    return F.relu(x)


def _count(sd: dict, prefix: str, stem: str) -> int:
    """How many consecutive modules `prefix + stem + N` (N = 1, 2, ...) the state dict holds."""
    n = 0
    while any(k.startswith(f"{prefix}{stem}{n + 1}.") for k in sd):
        n += 1
    return n


def densenet_forward(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """torchvision's DenseNet.forward(x) in eval mode, from its state dict `sd` (current key names)."""
    x = F.conv2d(x, sd["features.conv0.weight"], stride=2, padding=3)
    x = _bn_relu(x, sd, "features.norm0")
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)
    num_blocks = _count(sd, "features.", "denseblock")
    for b in range(1, num_blocks + 1):
        block = f"features.denseblock{b}."
        for i in range(1, _count(sd, block, "denselayer") + 1):
            layer = f"{block}denselayer{i}"
            y = F.conv2d(_bn_relu(x, sd, f"{layer}.norm1"), sd[f"{layer}.conv1.weight"])
            y = F.conv2d(_bn_relu(y, sd, f"{layer}.norm2"), sd[f"{layer}.conv2.weight"], padding=1)
            x = torch.cat([x, y], dim=1)
        if b < num_blocks:
            t = f"features.transition{b}"
            x = F.avg_pool2d(F.conv2d(_bn_relu(x, sd, f"{t}.norm"), sd[f"{t}.conv.weight"]), kernel_size=2, stride=2)
    x = _bn_relu(x, sd, "features.norm5")
    pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
    return F.linear(pooled, sd["classifier.weight"], sd["classifier.bias"])


def random_densenet121_state_dict(num_classes: int = 1000, in_channels: int = 3, seed: int = 0) -> dict:
    """Random weights (including non-trivial BN statistics) in torchvision's densenet121 layout."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, out_c: int, in_c: int, k: int) -> None:
        sd[f"{name}.weight"] = torch.randn(out_c, in_c, k, k, generator=gen) * (2.0 / (in_c * k * k)) ** 0.5

    def bn(name: str, c: int) -> None:
        sd[f"{name}.weight"] = 1.0 + 0.1 * torch.randn(c, generator=gen)
        sd[f"{name}.bias"] = 0.1 * torch.randn(c, generator=gen)
        sd[f"{name}.running_mean"] = 0.1 * torch.randn(c, generator=gen)
        sd[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=gen)

    growth, bn_size, channels = 32, 4, 64
    conv("features.conv0", channels, in_channels, 7)
    bn("features.norm0", channels)
    blocks = (6, 12, 24, 16)
    for b, layers in enumerate(blocks, start=1):
        for i in range(1, layers + 1):
            layer = f"features.denseblock{b}.denselayer{i}"
            bn(f"{layer}.norm1", channels)
            conv(f"{layer}.conv1", bn_size * growth, channels, 1)
            bn(f"{layer}.norm2", bn_size * growth)
            conv(f"{layer}.conv2", growth, bn_size * growth, 3)
            channels += growth
        if b < len(blocks):
            bn(f"features.transition{b}.norm", channels)
            conv(f"features.transition{b}.conv", channels // 2, channels, 1)
            channels //= 2
    bn("features.norm5", channels)
    sd["classifier.weight"] = 0.01 * torch.randn(num_classes, channels, generator=gen)
    sd["classifier.bias"] = 0.01 * torch.randn(num_classes, generator=gen)
    return sd


def legacy_key(key: str) -> str:
    """Current torchvision name -> the legacy one of old files ('denselayer1.norm1' -> 'denselayer1.norm.1')."""
    for name in ("norm1", "conv1", "norm2", "conv2"):
        key = key.replace(f".{name}.", f".{name[:-1]}.{name[-1]}.")
    return key
