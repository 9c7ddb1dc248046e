"""How many parameters (and bytes) a config implies, counted before anything is allocated.

Each field of a config is bounded on its own, but together they can still ask for far too much: the bounds
allow `UNetConfig(base_width=1024, depth=4)`, 7.9 G parameters (32 GB in float32), which used to pass and fail
in the allocator. The count is exact: the registered model is built on PyTorch's "meta" device, which records
shapes and allocates no memory (a few milliseconds; counts are cached per architecture), so the number is
`sum(p.numel() for p in model.parameters())` of the real model, for every family and every variant.

    MAX_PARAMETERS  2**30 (1.07 G parameters, 4 GiB in float32)  env MEDHUB_MAX_PARAMETERS
        the largest model a config may describe; the biggest medhub preset (VGG-19) has 143.7 M.

Code that wants another limit in one process may set `medhub.config_size.MAX_PARAMETERS`.
"""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache

from .errors import ConfigError
from .registry import MODEL_REGISTRY


def _env_count(name: str, default: int) -> int:
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f"{name}={text!r}: expected a positive whole number of parameters")
    return int(text)


MAX_PARAMETERS = _env_count("MEDHUB_MAX_PARAMETERS", 1 << 30)
BYTES_PER_PARAMETER = 4  # float32, what medhub builds and trains in

# Fields that name things but do not change the architecture (the head's size is num_labels, which stays).
_NOT_ARCHITECTURE = ("id2label", "label2id", "weights_info", "channel_names", "modality", "_name_or_path",
                     "transformers_version", "class_pos_weights", "class_neg_weights", "class_weights")
_counting = threading.local()


def count_parameters(config) -> int | None:
    """The number of parameters of the model `config` describes (None when no model is registered for it)."""
    model_class = MODEL_REGISTRY.get(config.model_type)
    if model_class is None or getattr(_counting, "active", False):
        return None  # an unregistered test config, or a config built while a model is being counted
    data = {k: v for k, v in config.to_dict().items() if k not in _NOT_ARCHITECTURE}
    data["num_labels"] = config.num_labels  # the head's size (to_dict keeps only id2label, left out above)
    return _count(model_class, type(config), json.dumps(data, sort_keys=True, default=str))


@lru_cache(maxsize=256)
def _count(model_class: type, config_class: type, architecture: str) -> int:
    import torch

    _counting.active = True
    try:
        config = config_class.from_dict(json.loads(architecture))
        with torch.device("meta"):
            model = model_class(config)
        return sum(p.numel() for p in model.parameters())
    finally:
        _counting.active = False


def check_parameter_count(config) -> None:
    """Refuse (ConfigError) a config whose model would have more than MAX_PARAMETERS parameters."""
    if getattr(_counting, "active", False):
        return
    count = count_parameters(config)
    if count is not None and count > MAX_PARAMETERS:
        raise ConfigError(
            f"{type(config).__name__}: this architecture has {count:,} parameters "
            f"({count * BYTES_PER_PARAMETER / 2**30:.1f} GiB in float32), over medhub's limit of {MAX_PARAMETERS:,} "
            f"(MEDHUB_MAX_PARAMETERS); its size comes from {_size_fields(config)}")


def _size_fields(config) -> str:
    """The fields that set a family's widths and depths, with their values, for the error message."""
    names = [n for n in ("base_width", "depth", "growth_rate", "block_config", "num_init_features", "bn_size",
                         "normal_feature_maps", "subsampled_feature_maps", "fc_feature_maps", "classifier_hidden",
                         "spatial_dims", "in_channels", "num_labels")
             if getattr(config, n, None) is not None]
    return ", ".join(f"{n}={getattr(config, n)!r}" for n in names)


__all__ = ["BYTES_PER_PARAMETER", "MAX_PARAMETERS", "check_parameter_count", "count_parameters"]
