"""`medhub convert`: turn a published PyTorch checkpoint (.pth/.pth.tar state dict) into a medhub folder.

The file is one the user hands over explicitly; it is read with `torch.load(weights_only=True)`, which
refuses pickled code (only tensors and plain containers are allowed), and never fetched from the Hub.
Each family's `conversion_<family>.py` maps the checkpoint's key layout onto medhub's and raises
`WeightsMismatchError` listing unmatched or missing keys.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from .errors import ConfigError, InputError

# arch name -> module holding `ARCHS` and `convert_state_dict(state_dict, arch, num_labels=None, in_channels=None)`
CONVERTER_MODULES = (
    "medhub.models.chexnet.conversion_chexnet",
    "medhub.models.resnet.conversion_resnet",
    "medhub.models.vgg.conversion_vgg",
)


def converters() -> dict[str, object]:
    table = {}
    for name in CONVERTER_MODULES:
        module = importlib.import_module(name)
        for arch in module.ARCHS:
            table[arch] = module
    return table


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with weights_only=True; unwrap {'state_dict': ...} / {'model': ...} containers."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for anything but tensors/containers, or a corrupt file
        raise InputError(
            f"{path}: refused or unreadable with torch.load(weights_only=True): {' '.join(str(err).split())[:300]}"
        ) from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return obj


def convert_checkpoint(src: str | Path, out_dir: str | Path, arch: str, num_labels: int | None = None,
                       in_channels: int | None = None):
    """Convert `src` (architecture `arch`) into a medhub model folder `out_dir`; returns the model."""
    table = converters()
    if arch not in table:
        raise ConfigError(f"--arch {arch!r} is not supported; choose one of {sorted(table)}")
    state_dict = load_checkpoint(src)
    model = table[arch].convert_state_dict(state_dict, arch, num_labels=num_labels, in_channels=in_channels)
    info = dict(model.config.weights_info or {})
    info.setdefault("converted_from", f"{Path(src).name} ({arch})")
    info.setdefault("trained", True)
    info.setdefault("training_data", f"Converted by `medhub convert` from the published checkpoint {Path(src).name} "
                                     f"({arch}); see that checkpoint's source for its training data and licence.")
    model.config.weights_info = info
    model.save_pretrained(out_dir)
    return model
