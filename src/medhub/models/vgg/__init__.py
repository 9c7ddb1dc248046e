"""VGG family: registers `medhub-vgg` with medhub and transformers' Auto classes."""

from ...registry import register_model
from .configuration_vgg import VGGConfig
from .modeling_vgg import VGGForImageClassification, VGGModel, VGGPreTrainedModel

register_model(VGGConfig, VGGForImageClassification, task="image-classification", extra_models=(VGGModel,))

__all__ = ["VGGConfig", "VGGForImageClassification", "VGGModel", "VGGPreTrainedModel"]
