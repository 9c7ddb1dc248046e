"""Attention U-Net (Oktay et al., MIDL 2018): a U-Net whose skip connections pass through attention gates.

Each skip connection but the finest goes through an additive grid attention gate
(`medhub.layers.attention_gate.AttentionGate`) gated by the next coarser decoder feature; the deepest
gate is gated by a 1x1 conv + norm + ReLU of the bottleneck ("gating signal"), as in the authors'
reference implementation. The decoder upsamples bi/trilinearly, concatenates [gated skip, upsampled]
and applies a double 3x3 convolution. With deep supervision, 1x1 heads on the coarser decoder levels
give extra logits upsampled to the input size. State-dict keys (public API):

    attention_unet.encoder_blocks.{i}.conv1/conv2/norm1/norm2       i = 0 (finest) .. depth-1
    attention_unet.bottleneck.*, attention_unet.gating_conv / gating_norm
    attention_unet.attention_gates.{i}.theta/phi/psi/output_conv/output_norm    i = 1 .. depth-1
    attention_unet.decoder_blocks.{i}.conv1/conv2/norm1/norm2       i = level (0 = finest)
    segmentation_head, deep_supervision_heads.{i}                   i = 1 .. depth-1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from ...layers.attention_gate import AttentionGate
from ...layers.factories import conv, max_pool, norm
from ...layers.unet_blocks import DoubleConv, resize_to
from ...layers.unet_shapes import UNetShapes
from ...losses.segmentation_loss import segmentation_loss
from ...modeling_utils import MedPreTrainedModel, Paper
from ...processing.greyscale import GreyscaleImageProcessor
from ...processing.volume import VolumeImageProcessor
from .configuration_attention_unet import AttentionUNetConfig


@dataclass
class AttentionUNetModelOutput(ModelOutput):
    """last_hidden_state: finest decoder feature; attentions: one map per gate (N, 1, *skip_spatial),
    deepest gate first; hidden states as in U-Net (encoder finest first + bottleneck; decoder deepest first).
    """

    last_hidden_state: torch.FloatTensor | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AttentionUNetSegmentationOutput(ModelOutput):
    """loss (when labels are given), logits (N, num_labels, *spatial), deep-supervision logits (levels
    depth-1 .. 1, upsampled to the input size), features and attention maps if asked."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    deep_supervision_logits: tuple[torch.FloatTensor, ...] | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


_BIBTEX = """
@inproceedings{oktay2018attention,
  title     = {Attention U-Net: Learning Where to Look for the Pancreas},
  author    = {Oktay, Ozan and Schlemper, Jo and Le Folgoc, Lo{\\"i}c and Lee, Matthew and Heinrich, Mattias and
               Misawa, Kazunari and Mori, Kensaku and McDonagh, Steven and Hammerla, Nils Y. and Kainz, Bernhard and
               Glocker, Ben and Rueckert, Daniel},
  booktitle = {Medical Imaging with Deep Learning (MIDL)},
  year      = {2018},
  eprint    = {1804.03999},
  archivePrefix = {arXiv}
}"""


class AttentionUNetPreTrainedModel(UNetShapes, MedPreTrainedModel):
    config_class = AttentionUNetConfig
    base_model_prefix = "attention_unet"

    processor_class = VolumeImageProcessor  # 3D (the default); 2D models default to the greyscale processor
    paper = Paper("Attention U-Net: Learning Where to Look for the Pancreas",
                  "https://arxiv.org/abs/1804.03999", _BIBTEX,
                  "Attention U-Net: a U-Net whose skip connections pass through additive attention gates driven by "
                  "the coarser decoder features, so the network learns to suppress irrelevant regions without an "
                  "external localisation step; optional deep supervision.")


    def default_image_processor(self):
        if self.config.spatial_dims == 2:
            return GreyscaleImageProcessor.default_for(self.config)
        return super().default_image_processor()


class AttentionUNetModel(AttentionUNetPreTrainedModel):
    """Attention U-Net without its 1x1 classifier: returns the finest decoder feature and the gate maps."""

    def __init__(self, config: AttentionUNetConfig):
        super().__init__(config)
        dims, depth = config.spatial_dims, config.depth
        widths = [config.base_width * 2**level for level in range(depth + 1)]
        block = dict(spatial_dims=dims, padding="same", norm_kind=config.norm)
        self.encoder_blocks = nn.ModuleList(
            DoubleConv(c_in, c_out, **block) for c_in, c_out in zip([config.in_channels] + widths[:-2], widths[:-1])
        )
        self.bottleneck = DoubleConv(widths[-2], widths[-1], **block)
        self.gating_conv = conv(dims)(widths[-1], widths[-1], kernel_size=1)
        self.gating_norm = norm(config.norm, dims, widths[-1])
        self.attention_gates = nn.ModuleDict({
            str(level): AttentionGate(widths[level], widths[level + 1], spatial_dims=dims, norm_kind=config.norm)
            for level in range(1, depth)
        })
        self.decoder_blocks = nn.ModuleList(
            DoubleConv(widths[level] + widths[level + 1], widths[level], **block) for level in range(depth)
        )
        self.pool = max_pool(dims)(kernel_size=2, stride=2)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, return_dict: bool | None = None
                ) -> AttentionUNetModelOutput | tuple:
        self.validate_pixel_values(pixel_values)
        self.check_input_size(tuple(pixel_values.shape[2:]))
        output_hidden_states, _ = self.output_options(output_hidden_states, None)
        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        _, return_dict = self.output_options(None, return_dict)

        skips, x = [], pixel_values
        for block in self.encoder_blocks:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        encoder_states = (*skips, x)
        gating = F.relu(self.gating_norm(self.gating_conv(x)))
        decoder_states, attentions = [], []
        for level in reversed(range(self.config.depth)):
            skip = skips[level]
            if str(level) in self.attention_gates:
                signal = gating if level == self.config.depth - 1 else x
                skip, alpha = self.attention_gates[str(level)](skip, signal)
                attentions.append(alpha)
            x = self.decoder_blocks[level](torch.cat([skip, resize_to(x, skip.shape[2:])], dim=1))
            decoder_states.append(x)

        output = AttentionUNetModelOutput(
            last_hidden_state=x,
            encoder_hidden_states=encoder_states if output_hidden_states else None,
            decoder_hidden_states=tuple(decoder_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()


class AttentionUNetForSegmentation(AttentionUNetPreTrainedModel):
    """Attention U-Net with a 1x1 convolution to `num_labels` logits (and deep-supervision heads).

    `labels` (N, *spatial) class indices at the input size; with deep supervision the loss is the mean
    of the configured loss over the final and every deep-supervision logits. `weight_map` as in U-Net.
    """

    def __init__(self, config: AttentionUNetConfig):
        super().__init__(config)
        dims = config.spatial_dims
        self.attention_unet = AttentionUNetModel(config)
        self.segmentation_head = conv(dims)(config.base_width, config.num_labels, kernel_size=1)
        self.deep_supervision_heads = nn.ModuleDict({
            str(level): conv(dims)(config.base_width * 2**level, config.num_labels, kernel_size=1)
            for level in range(1, config.depth)
        }) if config.deep_supervision else None
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                weight_map: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                output_attentions: bool | None = None, return_dict: bool | None = None
                ) -> AttentionUNetSegmentationOutput | tuple:
        want_states, return_dict = self.output_options(output_hidden_states, return_dict)
        features = self.attention_unet(pixel_values, output_hidden_states=want_states or self.config.deep_supervision,
                                       output_attentions=output_attentions, return_dict=True)
        logits = self.segmentation_head(features.last_hidden_state)
        extra_logits = None
        if self.deep_supervision_heads is not None:
            depth = self.config.depth
            extra_logits = tuple(  # decoder_hidden_states[i] is level depth-1-i
                resize_to(self.deep_supervision_heads[str(depth - 1 - i)](state), logits.shape[2:])
                for i, state in enumerate(features.decoder_hidden_states[:-1])
            )
        loss = None
        if labels is not None:
            losses = [segmentation_loss(self.config.loss, each, labels, weight_map)
                      for each in (logits, *(extra_logits or ()))]
            loss = torch.stack(losses).mean()
        output = AttentionUNetSegmentationOutput(
            loss=loss,
            logits=logits,
            deep_supervision_logits=extra_logits,
            encoder_hidden_states=features.encoder_hidden_states if want_states else None,
            decoder_hidden_states=features.decoder_hidden_states if want_states else None,
            attentions=features.attentions,
        )
        return output if return_dict else output.to_tuple()
