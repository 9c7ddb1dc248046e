"""An independent reference for the converter tests: torchvision's ResNet and VGG, written as plain
`torch.nn.functional` calls on a state dict (eval mode), and random checkpoints in torchvision's exact key
layout. Nothing here imports medhub, so the tests compare two separate implementations.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

# torchvision's resnet.py: block kind and blocks per stage.
RESNET = {
    "resnet18": ("basic", [2, 2, 2, 2]),
    "resnet34": ("basic", [3, 4, 6, 3]),
    "resnet50": ("bottleneck", [3, 4, 6, 3]),
    "resnet101": ("bottleneck", [3, 4, 23, 3]),
    "resnet152": ("bottleneck", [3, 8, 36, 3]),
}
# torchvision's vgg.py cfgs "A", "B", "D", "E".
VGG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


# -- random checkpoints in torchvision's layout ------------------------------------------------------------
def _conv(sd, key, out_c, in_c, k, gen, bias=False):
    # He-scaled so activations keep their size through deep stacks.
    sd[f"{key}.weight"] = torch.randn(out_c, in_c, k, k, generator=gen) * (2.0 / (in_c * k * k)) ** 0.5
    if bias:
        sd[f"{key}.bias"] = torch.randn(out_c, generator=gen) * 0.1


def _bn(sd, key, c, gen):
    sd[f"{key}.weight"] = 1.0 + 0.1 * torch.randn(c, generator=gen)
    sd[f"{key}.bias"] = 0.1 * torch.randn(c, generator=gen)
    sd[f"{key}.running_mean"] = 0.1 * torch.randn(c, generator=gen)
    sd[f"{key}.running_var"] = 0.5 + torch.rand(c, generator=gen)
    sd[f"{key}.num_batches_tracked"] = torch.tensor(100)


def _linear(sd, key, out_f, in_f, gen):
    sd[f"{key}.weight"] = torch.randn(out_f, in_f, generator=gen) * (1.0 / in_f) ** 0.5
    sd[f"{key}.bias"] = 0.1 * torch.randn(out_f, generator=gen)


def resnet_state_dict(arch: str, seed: int = 0, num_classes: int = 1000) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    kind, blocks = RESNET[arch]
    expansion = 1 if kind == "basic" else 4
    sd: dict[str, torch.Tensor] = {}
    _conv(sd, "conv1", 64, 3, 7, gen)
    _bn(sd, "bn1", 64, gen)
    inplanes = 64
    for i, (planes, n) in enumerate(zip([64, 128, 256, 512], blocks), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            stride = 2 if (i > 1 and j == 0) else 1
            if kind == "basic":
                _conv(sd, f"{p}.conv1", planes, inplanes, 3, gen)
                _bn(sd, f"{p}.bn1", planes, gen)
                _conv(sd, f"{p}.conv2", planes, planes, 3, gen)
                _bn(sd, f"{p}.bn2", planes, gen)
            else:
                _conv(sd, f"{p}.conv1", planes, inplanes, 1, gen)
                _bn(sd, f"{p}.bn1", planes, gen)
                _conv(sd, f"{p}.conv2", planes, planes, 3, gen)
                _bn(sd, f"{p}.bn2", planes, gen)
                _conv(sd, f"{p}.conv3", planes * 4, planes, 1, gen)
                _bn(sd, f"{p}.bn3", planes * 4, gen)
            if stride != 1 or inplanes != planes * expansion:
                _conv(sd, f"{p}.downsample.0", planes * expansion, inplanes, 1, gen)
                _bn(sd, f"{p}.downsample.1", planes * expansion, gen)
            inplanes = planes * expansion
    _linear(sd, "fc", num_classes, 512 * expansion, gen)
    return sd


def vgg_state_dict(arch: str, seed: int = 0, num_classes: int = 1000) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch_norm = arch.endswith("_bn")
    sd: dict[str, torch.Tensor] = {}
    index, in_c = 0, 3
    for v in VGG[arch.removesuffix("_bn")]:
        if v == "M":
            index += 1
            continue
        _conv(sd, f"features.{index}", v, in_c, 3, gen, bias=True)
        if batch_norm:
            _bn(sd, f"features.{index + 1}", v, gen)
            index += 3
        else:
            index += 2
        in_c = v
    _linear(sd, "classifier.0", 4096, 512 * 7 * 7, gen)
    _linear(sd, "classifier.3", 4096, 4096, gen)
    _linear(sd, "classifier.6", num_classes, 4096, gen)
    return sd


# -- functional forwards (eval mode) ------------------------------------------------------------------------
def _bn_f(x, sd, key):
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], training=False, eps=1e-5)


def resnet_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    x = F.relu(_bn_f(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1"))
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    bottleneck = "layer1.0.conv3.weight" in sd
    for i in range(1, 5):
        j = 0
        while f"layer{i}.{j}.conv1.weight" in sd:
            p = f"layer{i}.{j}"
            stride = 2 if (i > 1 and j == 0) else 1
            if bottleneck:
                out = F.relu(_bn_f(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                out = F.relu(_bn_f(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
                out = _bn_f(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                out = F.relu(_bn_f(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
                out = _bn_f(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            if f"{p}.downsample.0.weight" in sd:
                x = _bn_f(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
            x = F.relu(out + x)
            j += 1
    x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    return F.linear(x, sd["fc.weight"], sd["fc.bias"])


def vgg_features(sd: dict[str, torch.Tensor], x: torch.Tensor, arch: str) -> torch.Tensor:
    batch_norm = arch.endswith("_bn")
    index = 0
    for v in VGG[arch.removesuffix("_bn")]:
        if v == "M":
            x = F.max_pool2d(x, 2, stride=2)
            index += 1
            continue
        x = F.conv2d(x, sd[f"features.{index}.weight"], sd[f"features.{index}.bias"], padding=1)
        if batch_norm:
            x = _bn_f(x, sd, f"features.{index + 1}")
        x = F.relu(x)
        index += 3 if batch_norm else 2
    return x


def vgg_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, arch: str) -> torch.Tensor:
    x = torch.flatten(F.adaptive_avg_pool2d(vgg_features(sd, x, arch), 7), 1)
    x = F.relu(F.linear(x, sd["classifier.0.weight"], sd["classifier.0.bias"]))
    x = F.relu(F.linear(x, sd["classifier.3.weight"], sd["classifier.3.bias"]))
    return F.linear(x, sd["classifier.6.weight"], sd["classifier.6.bias"])
