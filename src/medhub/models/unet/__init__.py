"""U-Net (Ronneberger et al. 2015): configuration, model and registration with medhub and transformers."""

from ...registry import register_model
from .configuration_unet import UNetConfig
from .modeling_unet import UNetForSegmentation, UNetModel, UNetModelOutput, UNetPreTrainedModel, UNetSegmentationOutput

register_model(UNetConfig, UNetForSegmentation, task="image-segmentation", extra_models=(UNetModel,))

__all__ = ["UNetConfig", "UNetForSegmentation", "UNetModel", "UNetModelOutput", "UNetPreTrainedModel",
           "UNetSegmentationOutput"]
