"""medhub: a Hugging Face-style model hub for the CNNs that shaped medical image analysis."""

__version__ = "0.1.0"

from .auto import MedConfig, MedModel, register_model, register_processor
from .configuration_utils import MedPreTrainedConfig
from .errors import (
    ConfigError,
    CorruptWeightsError,
    HubError,
    InputError,
    MedhubError,
    ModelNotFoundError,
    PickleWeightsError,
    WeightsMismatchError,
)
from .modeling_utils import MedPreTrainedModel
from . import models  # noqa: E402  (registers every family)

__all__ = [
    "ConfigError",
    "CorruptWeightsError",
    "HubError",
    "InputError",
    "MedConfig",
    "MedModel",
    "MedPreTrainedConfig",
    "MedPreTrainedModel",
    "MedhubError",
    "ModelNotFoundError",
    "PickleWeightsError",
    "WeightsMismatchError",
    "register_model",
    "register_processor",
]
