"""ResNet family: registers `medhub-resnet` with medhub and transformers' Auto classes."""

from ...registry import register_model
from .configuration_resnet import ResNetConfig
from .modeling_resnet import ResNetForImageClassification, ResNetModel, ResNetPreTrainedModel

register_model(ResNetConfig, ResNetForImageClassification, task="image-classification", extra_models=(ResNetModel,))

__all__ = ["ResNetConfig", "ResNetForImageClassification", "ResNetModel", "ResNetPreTrainedModel"]
