"""Convert published DenseNet-121 / CheXNet state dicts into `CheXNetForImageClassification`.

The caller loads the file (`torch.load(path, weights_only=True, map_location="cpu")`); this module only
renames keys, adapts the first convolution and head, and refuses anything that does not fit exactly.

Supported layouts (`ARCHS`):
- "densenet121": torchvision's ImageNet `densenet121` (`features.*`, `classifier.*`), with either the current
  names (`denselayer1.norm1`) or the legacy ones of old torchvision files (`denselayer1.norm.1`);
- "chexnet": the arnoweng/CheXNet reproduction `model.pth.tar`, a dict whose `state_dict` has keys
  `module.densenet121.features.*` (legacy names) and the head `module.densenet121.classifier.0.*`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ...errors import ConfigError, WeightsMismatchError, describe_keys
from ...layers.classifier_utils import adapt_first_conv_weight
from ...layers.weight_transfer import check_layout
from .configuration_chexnet import CheXNetConfig
from .modeling_chexnet import CheXNetForImageClassification

ARCHS = ("densenet121", "chexnet")
FIRST_CONV = "features.conv0.weight"
HEAD_KEYS = ("classifier.weight", "classifier.bias")
_CHEXNET_PREFIXES = ("module.densenet121.", "densenet121.")
_SOURCES = {
    "densenet121": "torchvision densenet121 (ImageNet-1k)",
    "chexnet": "arnoweng/CheXNet model.pth.tar (a reproduction of CheXNet on NIH ChestX-ray14)",
}


def convert_state_dict(state_dict: Mapping[str, torch.Tensor], arch: str, num_labels: int | None = None,
                       in_channels: int | None = None) -> CheXNetForImageClassification:
    """A medhub model (eval mode) holding the weights of `state_dict`, a checkpoint of layout `arch`.

    num_labels: None keeps the checkpoint's head (1000 ImageNet classes, or CheXNet's 14 findings); another
        number drops that head for a newly initialised one (for fine-tuning).
    in_channels: None keeps the checkpoint's (3); 1 sums the RGB filters of conv0 so that a greyscale image
        gives the response the RGB model gives to that image replicated to three channels.
    Raises `WeightsMismatchError` listing missing, unexpected or wrongly shaped keys.
    """
    if arch not in ARCHS:
        raise ConfigError(f"convert_state_dict: arch={arch!r}; expected one of {list(ARCHS)}")
    weights = torchvision_layout(state_dict, arch)
    for key in (FIRST_CONV, *HEAD_KEYS):
        if key not in weights:
            raise WeightsMismatchError(f"{arch} checkpoint: missing {key!r} ({describe_keys(('keys seen', weights))})")
    source_labels = weights["classifier.weight"].shape[0]
    num_labels = source_labels if num_labels is None else num_labels
    in_channels = weights[FIRST_CONV].shape[1] if in_channels is None else in_channels
    keep_head = num_labels == source_labels

    config = CheXNetConfig(in_channels=in_channels, num_labels=num_labels,
                           weights_info=_weights_info(arch, keep_head))
    model = CheXNetForImageClassification(config)
    weights[FIRST_CONV] = adapt_first_conv_weight(weights[FIRST_CONV], in_channels)
    if not keep_head:
        for key in HEAD_KEYS:
            weights[key] = model.state_dict()[key]
    _check_fits(weights, model.state_dict(), arch)
    for key, value in model.state_dict().items():  # files from before PyTorch 0.4 have no BN batch counters
        if key.endswith("num_batches_tracked"):
            weights.setdefault(key, torch.zeros_like(value))
    model.load_state_dict(weights, strict=True)
    return model.eval()


def torchvision_layout(state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under current torchvision `densenet121` key names."""
    if arch == "chexnet" and isinstance(state_dict.get("state_dict"), Mapping):
        state_dict = state_dict["state_dict"]
    weights = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsMismatchError(f"{arch} checkpoint: {key!r} is a {type(value).__name__}, expected a tensor")
        if arch == "chexnet":
            key = _strip_chexnet_prefix(key)
        weights[modern_layer_name(key)] = value
    return weights


def modern_layer_name(key: str) -> str:
    """'features.denseblock1.denselayer1.norm.1.weight' -> 'features.denseblock1.denselayer1.norm1.weight'.

    Old torchvision files named the dense-layer modules `norm.1`, `conv.1`, `norm.2`, `conv.2`; only those
    four, inside a `denselayerN`, are renamed.
    """
    parts = key.split(".")
    out: list[str] = []
    i = 0
    while i < len(parts):
        inside_layer = bool(out) and out[-1].startswith("denselayer")
        if inside_layer and parts[i] in ("norm", "conv") and i + 1 < len(parts) and parts[i + 1] in ("1", "2"):
            out.append(parts[i] + parts[i + 1])
            i += 2
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out)


def _strip_chexnet_prefix(key: str) -> str:
    for prefix in _CHEXNET_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            # The reproduction's head is nn.Sequential(nn.Linear, nn.Sigmoid): index 0 is the linear layer.
            return "classifier." + key[len("classifier.0."):] if key.startswith("classifier.0.") else key
    return key  # left as is, so it is reported as unexpected


def _check_fits(weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], arch: str) -> None:
    check_layout(weights, {k: v.shape for k, v in expected.items()}, f"{arch} checkpoint", what="DenseNet-121's layout")


def _weights_info(arch: str, keep_head: bool) -> dict:
    info = {"converted_from": _SOURCES[arch], "trained": keep_head}
    if not keep_head:
        info["training_procedure"] = (
            f"Backbone converted from {_SOURCES[arch]}; the classifier is newly initialised: fine-tune before use."
        )
    if arch == "chexnet":
        info["training_data"] = "NIH ChestX-ray14 (Wang et al. 2017), as trained by the arnoweng/CheXNet reproduction"
    return info
