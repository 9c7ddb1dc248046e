"""CheXNet / DenseNet-121 family; importing it registers `medhub-chexnet` with medhub and transformers."""

from ...auto import register_model, register_processor
from ...processing.radiograph import RadiographImageProcessor
from .configuration_chexnet import CHESTXRAY14_FINDINGS, CheXNetConfig
from .conversion_chexnet import ARCHS, convert_state_dict
from .modeling_chexnet import CheXNetForImageClassification, CheXNetModel, CheXNetPreTrainedModel

register_model(CheXNetConfig, CheXNetForImageClassification, task="image-classification",
               extra_models=(CheXNetModel,))
# medhub's registry only: transformers' AutoImageProcessor refuses a processor that is not a BaseImageProcessor.
register_processor(None, RadiographImageProcessor)

__all__ = [
    "ARCHS",
    "CHESTXRAY14_FINDINGS",
    "CheXNetConfig",
    "CheXNetForImageClassification",
    "CheXNetModel",
    "CheXNetPreTrainedModel",
    "convert_state_dict",
]
