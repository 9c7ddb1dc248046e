"""`medhub convert`: turn a published PyTorch checkpoint (.pth/.pth.tar state dict) into a medhub folder.

The file is one the user hands over explicitly; it is read with `torch.load(weights_only=True)`, which
refuses pickled code (only tensors and plain containers are allowed), and never fetched from the Hub.
Each family's `conversion_<family>.py` maps the checkpoint's key layout onto medhub's and raises
`WeightsMismatchError` listing unmatched or missing keys.

Before `torch.load`, a zip-format checkpoint (every `torch.save` since PyTorch 1.6) is checked from its zip
directory alone, so that a small file cannot make the loader inflate gigabytes:

    MAX_CHECKPOINT_BYTES   2 GiB  env MEDHUB_MAX_CHECKPOINT_BYTES
        the members' uncompressed sizes together (the largest supported checkpoint, VGG-19-BN, is 0.55 GiB);
    MAX_COMPRESSION_RATIO  20     env MEDHUB_MAX_COMPRESSION_RATIO
        a member larger than 1 MiB may inflate to at most this many times its compressed size (`torch.save`
        stores members uncompressed; float weights deflate by ~1.1x; a tensor of zeros by ~1000x).

A `.safetensors` source goes through `medhub.weights_files.check_safetensors_file` (framing, NaN/Inf) first. Weights
holding NaN or Inf are refused at convert time (`CorruptWeightsError` naming the tensor), `num_labels` /
`in_channels` must be positive (`ConfigError`), and the output must be a folder (or not exist yet).
"""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path

import torch

from .errors import ConfigError, CorruptWeightsError, InputError
from .io.declared import is_zip
from .io.limits import env_bytes, human
from .weights_files import check_safetensors_file

MAX_CHECKPOINT_BYTES = env_bytes("MEDHUB_MAX_CHECKPOINT_BYTES", 2 << 30)
MAX_COMPRESSION_RATIO = env_bytes("MEDHUB_MAX_COMPRESSION_RATIO", 20)
RATIO_CHECKED_FROM = 1 << 20  # members smaller than this may compress as well as they like

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


def check_zip_checkpoint(path: Path) -> None:
    """Refuse a zip-format checkpoint whose members would inflate past the limits (zip directory only)."""
    if not is_zip(path):
        return  # a legacy (pre-1.6) checkpoint: stored uncompressed, its size is the file's
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable checkpoint archive ({err})") from None
    total = sum(m.file_size for m in members)
    if total > MAX_CHECKPOINT_BYTES:
        raise InputError(f"{path}: the checkpoint's members declare {total:,} bytes ({human(total)}) uncompressed, "
                         f"over "
                         f"medhub's limit of {human(MAX_CHECKPOINT_BYTES)} (medhub.convert.MAX_CHECKPOINT_BYTES; set "
                         "MEDHUB_MAX_CHECKPOINT_BYTES to convert larger checkpoints)")
    for m in members:
        if m.file_size > RATIO_CHECKED_FROM and m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1):
            raise InputError(
                f"{path}: member {m.filename!r} inflates from {m.compress_size:,} to {m.file_size:,} bytes "
                f"({m.file_size / max(m.compress_size, 1):.0f}x), over medhub's limit of {MAX_COMPRESSION_RATIO}x for "
                f"a "
                "checkpoint (torch.save stores tensors uncompressed; medhub.convert.MAX_COMPRESSION_RATIO, env "
                "MEDHUB_MAX_COMPRESSION_RATIO): refused as a zip bomb")


def check_finite(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse NaN or Inf in floating-point weights at convert time, naming the tensor."""
    for key, value in state_dict.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise CorruptWeightsError(f"{path}: tensor {key!r} holds {bad} NaN or Inf value(s); expected finite "
                                      f"weights "
                                      "(a corrupt or diverged checkpoint cannot be converted)")


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict with weights_only=True; unwrap {'state_dict': ...} / {'model': ...} containers."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file


        check_safetensors_file(path)  # framing, sizes and NaN/Inf, before the loader reads it
        try:
            return load_file(str(path))
        except SafetensorError as err:
            raise CorruptWeightsError(f"{path}: not a valid safetensors file: {err}") from None
    check_zip_checkpoint(path)
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
    for name, value in (("num_labels", num_labels), ("in_channels", in_channels)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name}={value!r}: expected a positive whole number (or None to keep the checkpoint's)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: the output path is a file; expected a folder to write the converted model into")
    state_dict = load_checkpoint(src)
    check_finite(state_dict, Path(src))
    model = table[arch].convert_state_dict(state_dict, arch, num_labels=num_labels, in_channels=in_channels)
    info = dict(model.config.weights_info or {})
    info.setdefault("converted_from", f"{Path(src).name} ({arch})")
    info.setdefault("trained", True)
    info.setdefault("training_data", f"Converted by `medhub convert` from the published checkpoint {Path(src).name} "
                                     f"({arch}); see that checkpoint's source for its training data and licence.")
    model.config.weights_info = info
    try:
        model.save_pretrained(out)
    except OSError as err:  # a parent that is a file, no permission, disk full
        raise InputError(f"{out}: cannot write the converted model there ({type(err).__name__}: {err})") from None
    return model
