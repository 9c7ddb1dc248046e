"""medhub: a Hugging Face-style model hub for the CNNs that shaped medical image analysis."""

__version__ = "0.1.0"

from . import models, processing  # noqa: F401  (importing them registers every family and processor)
from .auto import MedConfig, MedModel
from .configuration_utils import MedPreTrainedConfig
from .errors import (
    ConfigError,
    CorruptWeightsError,
    HubError,
    InputError,
    MedhubError,
    ModelNotFoundError,
    NoHeatmapError,
    PickleWeightsError,
    WeightsMismatchError,
)
from .modeling_utils import MedPreTrainedModel
from .models.attention_unet import AttentionUNetConfig, AttentionUNetForSegmentation, AttentionUNetModel
from .models.chexnet import CHESTXRAY14_FINDINGS, CheXNetConfig, CheXNetForImageClassification, CheXNetModel
from .models.deepmedic import DeepMedicConfig, DeepMedicForSegmentation, DeepMedicModel
from .models.resnet import ResNetConfig, ResNetForImageClassification, ResNetModel
from .models.unet import UNetConfig, UNetForSegmentation, UNetModel
from .models.vgg import VGGConfig, VGGForImageClassification, VGGModel
from .pipelines import pipeline
from .registry import register_model, register_processor

__all__ = [
    "AttentionUNetConfig",
    "AttentionUNetForSegmentation",
    "AttentionUNetModel",
    "CHESTXRAY14_FINDINGS",
    "CheXNetConfig",
    "CheXNetForImageClassification",
    "CheXNetModel",
    "DeepMedicConfig",
    "DeepMedicForSegmentation",
    "DeepMedicModel",
    "ResNetConfig",
    "ResNetForImageClassification",
    "ResNetModel",
    "UNetConfig",
    "UNetForSegmentation",
    "UNetModel",
    "VGGConfig",
    "VGGForImageClassification",
    "VGGModel",
    "ConfigError",
    "CorruptWeightsError",
    "HubError",
    "NoHeatmapError",
    "InputError",
    "MedConfig",
    "MedModel",
    "MedPreTrainedConfig",
    "MedPreTrainedModel",
    "MedhubError",
    "ModelNotFoundError",
    "PickleWeightsError",
    "WeightsMismatchError",
    "pipeline",
    "register_model",
    "register_processor",
]
