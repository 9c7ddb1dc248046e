"""Loading medhub configs and processors from a folder, and the dispatching entry points `MedModel` /
`MedConfig` (the registry they dispatch on is `medhub.registry`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub.errors import StrictDataclassError

from .configuration_utils import MedPreTrainedConfig
from .errors import ConfigError
from .hub import CONFIG_NAME, PROCESSOR_NAME, ResolvedModel, resolve_model
from .registry import CONFIG_REGISTRY, MODEL_REGISTRY, PROCESSOR_REGISTRY, register_model, register_processor
from .weights_files import WEIGHTS_NAME
from .weights_info import non_finite_path


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a valid value (JSON numbers must be finite)")


def _read_json(file: Path, what: str):
    """The JSON in `file`; NaN/Infinity literals and numbers that overflow to infinity (1e999) are refused,
    naming the field (`window_width`, `weights_info.metrics[0].value`)."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
        raise ConfigError(f"{file}: not a readable JSON {what} ({type(err).__name__}: {err})") from None
    bad = non_finite_path(data)
    if bad is not None:
        raise ConfigError(f"{file}: {bad}: expected a finite number (NaN and infinity, e.g. 1e999, are refused)")
    return data


def load_config(folder: str | os.PathLike, expected: type | None = None) -> MedPreTrainedConfig:
    """Read `folder/config.json` into the registered config class of its `model_type`."""
    file = Path(folder) / CONFIG_NAME
    data = _read_json(file, "config")
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_REGISTRY:
        raise ConfigError(
            f"{file}: unknown model_type {model_type!r}; medhub knows {sorted(CONFIG_REGISTRY)}"
        )
    config_class = CONFIG_REGISTRY[model_type]
    for key in ("dtype", "torch_dtype"):
        value = data.get(key)
        is_dtype_name = isinstance(value, str) and (
            value == "auto" or isinstance(getattr(torch, value, None), torch.dtype))
        if value is not None and not is_dtype_name:
            raise ConfigError(f"{file}: {key}={value!r} is not a torch dtype name (e.g. 'float32')")
    if expected is not None and expected is not MedPreTrainedConfig and not issubclass(config_class, expected):
        raise ConfigError(f"{file}: model_type {model_type!r} is a {config_class.__name__}, not a {expected.__name__}")
    try:
        config = config_class.from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{file}: {err}") from None
    except (StrictDataclassError, TypeError, ValueError) as err:
        raise ConfigError(f"{file}: invalid {config_class.__name__}: {' '.join(str(err).split())}") from None
    config._name_or_path = str(folder)
    return config


def load_image_processor(folder: str | os.PathLike):
    file = Path(folder) / PROCESSOR_NAME
    data = _read_json(file, "processor config")
    name = data.get("image_processor_type") if isinstance(data, dict) else None
    if not isinstance(name, str) or name not in PROCESSOR_REGISTRY:
        raise ConfigError(f"{file}: unknown image_processor_type {name!r}; medhub knows {sorted(PROCESSOR_REGISTRY)}")
    try:
        return PROCESSOR_REGISTRY[name].from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{file}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{file}: invalid {name}: {err}") from None


class MedConfig:
    """Entry point for configs: `MedConfig.from_pretrained(id_or_path)` returns the right config class."""

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None, **kwargs) -> MedPreTrainedConfig:
        resolved = resolve_model(name_or_path, revision=revision, need_weights=False,
                                 token=kwargs.get("token"), cache_dir=kwargs.get("cache_dir"),
                                 local_files_only=kwargs.get("local_files_only", False))
        return load_config(resolved.path)

    @staticmethod
    def for_model(model_type: str, **kwargs) -> MedPreTrainedConfig:
        if model_type not in CONFIG_REGISTRY:
            raise ConfigError(f"unknown model_type {model_type!r}; medhub knows {sorted(CONFIG_REGISTRY)}")
        return CONFIG_REGISTRY[model_type](**kwargs)


class MedModel:
    """Entry point for models: dispatches on the config's `model_type` to the registered model class.

    >>> model = MedModel.from_pretrained("medhub/chexnet")        # Hub, then the local zoo
    >>> model = MedModel.from_pretrained("./my-finetuned-unet")     # a local folder
    >>> model = MedModel.from_config(medhub.UNetConfig())           # random weights
    """

    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike, revision: str | None = None, **kwargs: Any):
        resolved = resolve_model(name_or_path, revision=revision, token=kwargs.get("token"),
                                 cache_dir=kwargs.get("cache_dir"),
                                 local_files_only=kwargs.get("local_files_only", False),
                                 defer_check=(WEIGHTS_NAME,))  # checked as the model's loader reads it
        config = load_config(resolved.path)
        model_class = MODEL_REGISTRY[config.model_type]
        return model_class.from_pretrained(name_or_path, config=config, _resolved=resolved, **kwargs)

    @staticmethod
    def from_config(config: MedPreTrainedConfig, **kwargs: Any):
        if config.model_type not in MODEL_REGISTRY:
            raise ConfigError(f"unknown model_type {config.model_type!r}; medhub knows {sorted(MODEL_REGISTRY)}")
        return MODEL_REGISTRY[config.model_type](config, **kwargs)

    @staticmethod
    def model_types() -> list[str]:
        return sorted(MODEL_REGISTRY)


__all__ = ["MedModel", "MedConfig", "register_model", "register_processor", "load_config", "ResolvedModel"]
