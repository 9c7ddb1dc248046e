"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015): the paper's network, 2D and 3D.

Contracting path: `depth` levels of double 3x3 convolution + 2x2 max-pooling, channels doubling from
`base_width`; a bottleneck double convolution; expanding path: 2x2 up-convolution halving the channels,
concatenation with the (centre-cropped) encoder feature of the same level and a double convolution;
a 1x1 convolution maps to `num_labels` logits. State-dict keys (public API):

    unet.encoder_blocks.{i}.conv1/conv2(.norm1/.norm2)    i = 0 (finest) .. depth-1
    unet.bottleneck.conv1/conv2
    unet.decoder_blocks.{i}.up/.conv1/.conv2              i = level it merges with (0 = finest)
    segmentation_head
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.utils import ModelOutput

from ...inference.inferers import Inferer, OverlapTileInferer, SlidingWindowInferer
from ...layers.factories import conv, max_pool
from ...layers.unet_blocks import DoubleConv, UpBlock
from ...layers.unet_shapes import UNetShapes
from ...losses.segmentation_loss import segmentation_loss
from ...modeling_utils import MedPreTrainedModel, Paper
from ...processing.greyscale import GreyscaleImageProcessor
from .configuration_unet import UNetConfig


@dataclass
class UNetModelOutput(ModelOutput):
    """last_hidden_state: the finest decoder feature (N, base_width, *out_spatial).
    encoder_hidden_states: each encoder block's output (finest first), then the bottleneck's.
    decoder_hidden_states: each decoder block's output, deepest first.
    """

    last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class UNetSegmentationOutput(ModelOutput):
    """loss (when labels are given), logits (N, num_labels, *out_spatial) and the features if asked."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


_BIBTEX = """
@inproceedings{ronneberger2015unet,
  title     = {U-Net: Convolutional Networks for Biomedical Image Segmentation},
  author    = {Ronneberger, Olaf and Fischer, Philipp and Brox, Thomas},
  booktitle = {Medical Image Computing and Computer-Assisted Intervention (MICCAI)},
  series    = {Lecture Notes in Computer Science},
  volume    = {9351},
  pages     = {234--241},
  year      = {2015},
  doi       = {10.1007/978-3-319-24574-4_28}
}"""


class UNetPreTrainedModel(UNetShapes, MedPreTrainedModel):
    config_class = UNetConfig
    base_model_prefix = "unet"
    processor_class = GreyscaleImageProcessor
    paper = Paper("U-Net: Convolutional Networks for Biomedical Image Segmentation",
                  "https://arxiv.org/abs/1505.04597", _BIBTEX,
                  "U-Net: a fully convolutional encoder-decoder whose skip connections concatenate contracting-path "
                  "features into the expanding path, trained with a pixel-wise cross-entropy weighted to separate "
                  "touching cells. Unpadded convolutions: the output map is the centre of the input tile.")

    def inferer_class(self) -> type[Inferer]:
        """The paper's overlap-tile strategy for valid padding; Gaussian sliding windows for 'same' padding."""
        return OverlapTileInferer if self.config.padding == "valid" else SlidingWindowInferer


class UNetModel(UNetPreTrainedModel):
    """The U-Net without its 1x1 classifier: returns the finest decoder feature map."""

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        dims, width = config.spatial_dims, config.base_width
        widths = [width * 2**level for level in range(config.depth + 1)]
        block = dict(spatial_dims=dims, padding=config.padding, norm_kind=config.norm)
        self.encoder_blocks = nn.ModuleList(
            DoubleConv(c_in, c_out, **block) for c_in, c_out in zip([config.in_channels] + widths[:-2], widths[:-1])
        )
        self.bottleneck = DoubleConv(widths[-2], widths[-1], **block)
        self.decoder_blocks = nn.ModuleList(
            UpBlock(widths[level + 1], widths[level], widths[level], upsampling=config.upsampling, **block)
            for level in range(config.depth)
        )
        self.pool = max_pool(dims)(kernel_size=2, stride=2)
        self.dropout = nn.Dropout(config.dropout)  # element-wise, at the end of the contracting path
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> UNetModelOutput | tuple:
        self.validate_pixel_values(pixel_values)
        self.check_input_size(tuple(pixel_values.shape[2:]))
        output_hidden_states, return_dict = self.output_options(output_hidden_states, return_dict)

        skips, x = [], pixel_values
        for level, block in enumerate(self.encoder_blocks):
            x = block(x)
            if level == self.config.depth - 1:
                x = self.dropout(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottleneck(x))
        encoder_states = (*skips, x)
        decoder_states = []
        for level in reversed(range(self.config.depth)):
            x = self.decoder_blocks[level](x, skips[level])
            decoder_states.append(x)

        output = UNetModelOutput(
            last_hidden_state=x,
            encoder_hidden_states=encoder_states if output_hidden_states else None,
            decoder_hidden_states=tuple(decoder_states) if output_hidden_states else None,
        )
        return output if return_dict else output.to_tuple()


class UNetForSegmentation(UNetPreTrainedModel):
    """U-Net with its 1x1 convolution to `num_labels` logits and the configured loss.

    `labels` (N, *spatial) class indices, at the output size or at the input size: with valid padding the
    output covers the centre of the input, so input-size labels (and `weight_map`) are centre-cropped
    to the output size. `weight_map` (N, *spatial), e.g. from `medhub.losses.unet_weight_map`, weights
    the pixel-wise cross-entropy when `config.loss == "weighted_ce"` (plain cross-entropy without it).
    """

    def __init__(self, config: UNetConfig):
        super().__init__(config)
        self.unet = UNetModel(config)
        self.segmentation_head = conv(config.spatial_dims)(config.base_width, config.num_labels, kernel_size=1)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                weight_map: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, return_dict: bool | None = None
                ) -> UNetSegmentationOutput | tuple:
        """`output_attentions` is accepted for a uniform signature; U-Net has no attention maps."""
        features = self.unet(pixel_values, output_hidden_states=output_hidden_states, return_dict=True)
        _, return_dict = self.output_options(None, return_dict)
        logits = self.segmentation_head(features.last_hidden_state)
        loss = None
        if labels is not None:
            loss = segmentation_loss(self.config.loss, logits, labels, weight_map)
        output = UNetSegmentationOutput(
            loss=loss,
            logits=logits,
            encoder_hidden_states=features.encoder_hidden_states,
            decoder_hidden_states=features.decoder_hidden_states,
        )
        return output if return_dict else output.to_tuple()
