"""CheXNet / DenseNet-121 family; importing it registers `medhub-chexnet` with medhub and transformers."""

from ...registry import register_model
from .configuration_chexnet import CHESTXRAY14_FINDINGS, CheXNetConfig
from .conversion_chexnet import ARCHS, convert_state_dict
from .modeling_chexnet import CheXNetForImageClassification, CheXNetModel, CheXNetPreTrainedModel

register_model(CheXNetConfig, CheXNetForImageClassification, task="image-classification",
               extra_models=(CheXNetModel,))

__all__ = ["ARCHS", "CHESTXRAY14_FINDINGS", "CheXNetConfig", "CheXNetForImageClassification", "CheXNetModel",
           "CheXNetPreTrainedModel", "convert_state_dict"]
