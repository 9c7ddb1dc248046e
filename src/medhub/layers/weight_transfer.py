"""Copy an ImageNet checkpoint (torchvision key layout) into a medhub model, strictly.

Shared by the converters of the classifier families. The checkpoint is checked against the full layout
of the architecture it claims to be (keys and shapes, taken from a 1000-class RGB model built on the meta
device), so a truncated, renamed ("module." prefixes) or wrong-architecture checkpoint is an error that
names the keys, never a partly random model. Only the head the caller asks to replace is left at its
fresh initialisation, and the first convolution is adapted to the model's input channels.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from ..errors import WeightsMismatchError
from .classifier_utils import adapt_first_conv_weight

# Old checkpoints (saved before PyTorch 0.4.1) lack these BatchNorm counters; they do not affect outputs.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)


def _names(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_layout(state_dict: Mapping[str, torch.Tensor], layout: Mapping[str, torch.Size], source: str) -> None:
    """Raise `WeightsMismatchError` listing missing, unexpected and wrongly shaped keys of `state_dict`."""
    missing = [k for k in layout if k not in state_dict and not k.endswith(OPTIONAL_SUFFIXES)]
    unexpected = [k for k in state_dict if k not in layout]
    not_tensors = [k for k, v in state_dict.items() if k in layout and not isinstance(v, torch.Tensor)]
    shapes = [f"{k} {tuple(v.shape)} (expected {tuple(layout[k])})" for k, v in state_dict.items()
              if k in layout and isinstance(v, torch.Tensor) and v.shape != layout[k]]
    parts = []
    if missing:
        parts.append(f"missing keys: {_names(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {_names(unexpected)}")
    if not_tensors:
        parts.append(f"values that are not tensors: {_names(not_tensors)}")
    if shapes:
        parts.append(f"wrong shapes: {_names(shapes)}")
    if parts:
        raise WeightsMismatchError(f"{source}: the state dict does not have the expected layout; " + "; ".join(parts))


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
        raise WeightsMismatchError(
            f"{source}: the model does not fit the checkpoint layout; not loaded: {_names(left_out)}; "
            f"not in the model: {_names(result.unexpected_keys)}"
        )
