"""CheXNet (Rajpurkar et al. 2017): DenseNet-121 on chest radiographs with one sigmoid per finding.

State-dict keys are torchvision's `densenet121` keys (`features.*`, `classifier.*`), so ImageNet and
CheXNet-reproduction weights convert with `conversion_chexnet.convert_state_dict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPoolingAndNoAttention, ImageClassifierOutput

from ...errors import InputError
from ...layers.classifier_utils import FineTuneMixin, RadiographClassifier
from ...layers.densenet_blocks import densenet_features
from ...losses.weighted_bce import weighted_bce_with_logits
from ...modeling_utils import MedPreTrainedModel, Paper
from .configuration_chexnet import CheXNetConfig

_BIBTEX = """
@article{rajpurkar2017chexnet,
  title   = {CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep Learning},
  author  = {Rajpurkar, Pranav and Irvin, Jeremy and Zhu, Kaylie and Yang, Brandon and Mehta, Hershel and
             Duan, Tony and Ding, Daisy and Bagul, Aarti and Langlotz, Curtis and Shpanskaya, Katie and
             Lungren, Matthew P. and Ng, Andrew Y.},
  journal = {arXiv preprint arXiv:1711.05225},
  year    = {2017}
}
"""


class CheXNetPreTrainedModel(RadiographClassifier, MedPreTrainedModel):
    config_class = CheXNetConfig
    paper = Paper("CheXNet: Radiologist-Level Pneumonia Detection on Chest X-Rays with Deep Learning",
                  "https://arxiv.org/abs/1711.05225", _BIBTEX,
                  "A 121-layer DenseNet that reads a frontal chest radiograph and outputs one probability (sigmoid) "
                  "for each of the 14 ChestX-ray14 findings; trained with a class-balanced weighted binary "
                  "cross-entropy.")
    # The final feature maps (after norm5 + ReLU), the layer CAM and Grad-CAM read by default.
    cam_target_layer = "features.relu5"


    def _build_features(self, config: CheXNetConfig) -> int:
        self.features, channels = densenet_features(
            config.growth_rate, config.block_config, config.num_init_features, config.bn_size,
            config.drop_rate, config.in_channels,
        )
        return channels

    def _encode(self, pixel_values: torch.Tensor, output_hidden_states: bool) -> tuple[torch.Tensor, tuple]:
        """Final feature maps and, if asked, (stem, dense block 1..n, final feature maps) outputs."""
        self.validate_pixel_values(pixel_values, spatial_dims=2, min_size=self.config.min_input_size)
        hidden_states = []
        x = pixel_values
        for name, module in self.features.named_children():
            x = module(x)
            if output_hidden_states and (name == "pool0" or name.startswith("denseblock")):
                hidden_states.append(x)
        if output_hidden_states:
            hidden_states.append(x)
        return x, tuple(hidden_states)


class CheXNetModel(CheXNetPreTrainedModel):
    """The DenseNet backbone: final feature maps (last_hidden_state) and their global average (pooler_output)."""

    def __init__(self, config: CheXNetConfig):
        super().__init__(config)
        self.num_features = self._build_features(config)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> BaseModelOutputWithPoolingAndNoAttention | tuple:
        output_hidden_states, return_dict = self.output_options(output_hidden_states, return_dict)
        maps, hidden_states = self._encode(pixel_values, bool(output_hidden_states))
        pooled = F.adaptive_avg_pool2d(maps, 1).flatten(1)
        if not return_dict:
            return (maps, pooled) + ((hidden_states,) if output_hidden_states else ())
        return BaseModelOutputWithPoolingAndNoAttention(
            last_hidden_state=maps, pooler_output=pooled, hidden_states=hidden_states or None
        )


class CheXNetForImageClassification(FineTuneMixin, CheXNetPreTrainedModel):
    """DenseNet features -> global average pooling -> linear `classifier` (logits; apply sigmoid for multi-label).

    Loss when `labels` are given: multi-label, the paper's weighted BCE with `config.class_pos_weights` /
    `class_neg_weights` (or, unset, weights from the batch's labels; see `weighted_bce_with_logits`), labels
    float (batch, num_labels) in {0, 1}; single-label, cross-entropy with labels long (batch,).
    """

    head_module_names = ("classifier",)

    def __init__(self, config: CheXNetConfig):
        super().__init__(config)
        self.num_features = self._build_features(config)
        self.classifier = nn.Linear(self.num_features, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                output_hidden_states: bool | None = None,
                return_dict: bool | None = None) -> ImageClassifierOutput | tuple:
        output_hidden_states, return_dict = self.output_options(output_hidden_states, return_dict)
        maps, hidden_states = self._encode(pixel_values, bool(output_hidden_states))
        logits = self.classifier(F.adaptive_avg_pool2d(maps, 1).flatten(1))
        loss = self.compute_loss(logits, labels) if labels is not None else None
        if not return_dict:
            output = (logits,) + ((hidden_states,) if output_hidden_states else ())
            return ((loss,) + output) if loss is not None else output
        return ImageClassifierOutput(loss=loss, logits=logits, hidden_states=hidden_states or None)

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.config.problem_type == "single_label_classification":
            if labels.shape != logits.shape[:1]:
                raise InputError(
                    f"labels: expected class indices of shape ({logits.shape[0]},), got {tuple(labels.shape)}"
                )
            return F.cross_entropy(logits, labels.long())
        return weighted_bce_with_logits(logits, labels, self.config.class_pos_weights, self.config.class_neg_weights)
