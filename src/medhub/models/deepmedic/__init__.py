"""DeepMedic family (Kamnitsas et al., MedIA 2017); importing it registers `medhub-deepmedic`."""

from ...registry import register_model
from .configuration_deepmedic import BRATS_LABELS, DeepMedicConfig
from .geometry_deepmedic import DeepMedicGeometry
from .inference_deepmedic import segment_volume
from .modeling_deepmedic import (
    DeepMedicForSegmentation,
    DeepMedicModel,
    DeepMedicPreTrainedModel,
    deepmedic_cross_entropy,
)

register_model(DeepMedicConfig, DeepMedicForSegmentation, task="image-segmentation", extra_models=(DeepMedicModel,))

__all__ = ["BRATS_LABELS", "DeepMedicConfig", "DeepMedicForSegmentation", "DeepMedicGeometry", "DeepMedicModel",
           "DeepMedicPreTrainedModel", "deepmedic_cross_entropy", "segment_volume"]
