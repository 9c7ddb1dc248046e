"""Copy an ImageNet checkpoint (torchvision key layout) into a medhub model, strictly.

Shared by the converters of the classifier families. The checkpoint is checked against the full layout
of the architecture it claims to be (keys and shapes, taken from a 1000-class RGB model built on the meta
device), so a truncated, renamed ("module." prefixes) or wrong-architecture checkpoint is an error that
names the keys, never a partly random model. Only the head the caller asks to replace is left at its
fresh initialisation, and the first convolution is adapted to the model's input channels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import WeightsMismatchError, describe_keys
from .classifier_utils import adapt_first_conv_weight

# Old checkpoints (saved before PyTorch 0.4.1) lack these BatchNorm counters; they do not affect outputs.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)
IMAGENET_CLASSES = 1000


def imagenet_layout(model_class: type, config_class: type, **arch: Any) -> dict[str, torch.Size]:
    """Keys and shapes of torchvision's ImageNet checkpoint of an architecture (`arch`: its config fields), from a
    3-channel, 1000-class model built on the meta device (no memory)."""
    with torch.device("meta"):
        reference = model_class(config_class(**arch, in_channels=3, num_labels=IMAGENET_CLASSES))
    return {key: value.shape for key, value in reference.state_dict().items()}


def converted_fields(num_labels: int | None, id2label: dict[int, str] | None, in_channels: int | None
                     ) -> dict[str, Any]:
    """The config fields a converter sets: the label names given, else a count (None: ImageNet's 1000), and the
    input channels (None: RGB). Counts of 0 or less are passed on for the config to refuse, never defaulted."""
    labels = {"id2label": id2label} if id2label is not None else {
        "num_labels": IMAGENET_CLASSES if num_labels is None else num_labels}
    return {**labels, "in_channels": 3 if in_channels is None else in_channels}


def check_layout(state_dict: Mapping[str, torch.Tensor], layout: Mapping[str, torch.Size], source: str,
                 what: str = "the expected layout") -> None:
    """Raise `WeightsMismatchError` listing missing, unexpected and wrongly shaped keys of `state_dict`."""
    report = describe_keys(
        ("missing keys", [k for k in layout if k not in state_dict and not k.endswith(OPTIONAL_SUFFIXES)]),
        ("unexpected keys", [k for k in state_dict if k not in layout]),
        ("values that are not tensors", [k for k, v in state_dict.items()
                                         if k in layout and not isinstance(v, torch.Tensor)]),
        ("wrong shapes", [f"{k} {tuple(v.shape)} (expected {tuple(layout[k])})" for k, v in state_dict.items()
                          if k in layout and isinstance(v, torch.Tensor) and v.shape != layout[k]]))
    if report:
        raise WeightsMismatchError(f"{source}: the state dict does not have {what}; {report}")


def transfer_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor], layout: Mapping[str, torch.Size],
                     first_conv: str, new_head: tuple[str, ...], source: str) -> None:
    """Load `state_dict` into `model` except the keys under the `new_head` prefixes (left as initialised).

    `first_conv` is the key of the RGB first-layer weight, adapted to the model's input channels
    (summed over RGB for 1 channel, see `adapt_first_conv_weight`).
    """
    check_layout(state_dict, layout, source)
    own = model.state_dict()
    weights = {}
    for key, value in state_dict.items():
        if key.startswith(new_head):
            continue
        if key == first_conv:
            value = adapt_first_conv_weight(value, own[key].shape[1])
        weights[key] = value
    result = model.load_state_dict(weights, strict=False)
    left_out = [k for k in result.missing_keys if not k.startswith(new_head) and not k.endswith(OPTIONAL_SUFFIXES)]
    if left_out or result.unexpected_keys:
        report = describe_keys(("not loaded", left_out), ("not in the model", result.unexpected_keys))
        raise WeightsMismatchError(f"{source}: the model does not fit the checkpoint layout; {report}")
