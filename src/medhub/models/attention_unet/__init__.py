"""Attention U-Net (Oktay et al. 2018): configuration, model and registration with medhub and transformers."""

from ...registry import register_model
from .configuration_attention_unet import AttentionUNetConfig
from .modeling_attention_unet import (
    AttentionUNetForSegmentation,
    AttentionUNetModel,
    AttentionUNetModelOutput,
    AttentionUNetPreTrainedModel,
    AttentionUNetSegmentationOutput,
)

register_model(AttentionUNetConfig, AttentionUNetForSegmentation, task="image-segmentation",
               extra_models=(AttentionUNetModel,))

__all__ = ["AttentionUNetConfig", "AttentionUNetForSegmentation", "AttentionUNetModel", "AttentionUNetModelOutput",
           "AttentionUNetPreTrainedModel", "AttentionUNetSegmentationOutput"]
