"""DeepMedic (Kamnitsas et al., Medical Image Analysis 2017): a multi-scale 3D CNN for lesion segmentation.

A normal-resolution pathway and parallel pathways that see every f-th voxel of a wider context run
unpadded 3^3 convolutions; the subsampled outputs are repeated back to full resolution and cropped to the
normal pathway's output, everything is concatenated, and fully connected layers (convolutions) classify
every voxel of the central output segment. Modules and arithmetic follow the original code
(github.com/deepmedic/deepmedic): see `medhub.layers.deepmedic_blocks` and `geometry_deepmedic`.

State-dict keys: deepmedic.pathways.{p}.layers.{i}.{bias|norm.*,act.weight,conv.weight},
deepmedic.fc_layers.{i}.*, classifier.* and output_bias (the bias the original adds before its softmax).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, SemanticSegmenterOutput

from ...errors import InputError
from ...inference.inferers import DeepMedicInferer, Inferer
from ...layers.deepmedic_blocks import DeepMedicConvBlock, crop_centre, run_blocks, upsample_repeat
from ...modeling_utils import MedPreTrainedModel, Paper
from ...processing.volume import VolumeImageProcessor
from .configuration_deepmedic import DeepMedicConfig
from .geometry_deepmedic import DeepMedicGeometry, Triple, as_triple
from .inference_deepmedic import segment_volume

LOG_EPSILON = 1e-6  # the original's x_entr adds this inside the log


_BIBTEX = """@article{kamnitsas2017deepmedic,
  title={Efficient multi-scale 3D CNN with fully connected CRF for accurate brain lesion segmentation},
  author={Kamnitsas, Konstantinos and Ledig, Christian and Newcombe, Virginia F. J. and Simpson, Joanna P. and Kane,
          Andrew D. and Menon, David K. and Rueckert, Daniel and Glocker, Ben},
  journal={Medical Image Analysis},
  volume={36},
  pages={61--78},
  year={2017}
}"""


class DeepMedicPreTrainedModel(MedPreTrainedModel):
    config_class = DeepMedicConfig
    base_model_prefix = "deepmedic"
    paper = Paper("Efficient multi-scale 3D CNN with fully connected CRF for accurate brain lesion segmentation",
                  "https://doi.org/10.1016/j.media.2016.10.004", _BIBTEX,
                  "DeepMedic: a normal-resolution and subsampled 3D pathways of unpadded 3x3x3 convolutions, "
                  "up-sampled and concatenated, then fully connected layers as convolutions and a softmax over "
                  "classes per voxel.")
    pipeline_tag = "image-segmentation"
    processor_class = VolumeImageProcessor

    @property
    def spatial_dims(self) -> int:
        return 3

    def inferer_class(self) -> type[Inferer]:
        """DeepMedic's own dense segment tiling (`segment_volume`)."""
        return DeepMedicInferer

    def example_input_size(self) -> tuple[int, ...]:
        """The full-resolution context patch of one training segment (what `forward` takes alone)."""
        return tuple(self.context_size(self.output_size(tuple(self.config.train_segment_size))))

    def _init_weights(self, module: nn.Module) -> None:
        """The original's ["fanIn", 2]: N(0, scale / fan_in) weights; PReLU slopes 0.01; biases 0; BN 1 / 0."""
        if isinstance(module, nn.Conv3d):
            fan_in = module.in_channels * math.prod(module.kernel_size)
            init.normal_(module.weight, mean=0.0, std=math.sqrt(self.config.conv_init_variance_scale / fan_in))
        elif isinstance(module, nn.PReLU):
            init.constant_(module.weight, self.config.prelu_init)
        elif isinstance(module, DeepMedicConvBlock) and hasattr(module, "bias"):
            init.zeros_(module.bias)
        elif isinstance(module, DeepMedicForSegmentation):
            init.zeros_(module.output_bias)
        elif isinstance(module, nn.BatchNorm3d):
            super()._init_weights(module)

    # -- segment arithmetic (sizes per axis; an int means a cube) ------------------------------------------
    @property
    def geometry(self) -> DeepMedicGeometry:
        return DeepMedicGeometry(self.config.receptive_field, self.config.subsample_factors)

    @property
    def receptive_field(self) -> Triple:
        """Receptive field of the normal pathway (the original's; the 3^3 first FC layer adds 2 more)."""
        return self.config.receptive_field

    def segment_sizes(self, output_size: int | Sequence[int]) -> list:
        """Input size of every pathway (normal first) that predicts an `output_size` segment."""
        sizes = self.geometry.segment_sizes(_positive_triple(output_size))
        return [s[0] for s in sizes] if isinstance(output_size, int) else sizes

    def context_size(self, output_size: int | Sequence[int]) -> int | Triple:
        """Full-resolution patch size that `forward` needs when `subsampled_values` are not given."""
        size = self.geometry.context_size(_positive_triple(output_size))
        return size[0] if isinstance(output_size, int) else size

    def output_size(self, segment_size: int | Sequence[int]) -> int | Triple:
        """Output segment predicted from a normal-pathway segment (released: 37 -> 21, 45 -> 29)."""
        size = self.geometry.output_size(as_triple(segment_size, "segment_size"))
        return size[0] if isinstance(segment_size, int) else size


def _positive_triple(size) -> Triple:
    triple = as_triple(size, "output_size")
    if min(triple) < 1:
        raise InputError(f"output_size={size!r}: expected sizes >= 1")
    return triple


class DeepMedicPathway(nn.Module):
    """One pathway: a stack of DeepMedicConvBlocks (the first a bare conv on a biased input), with residuals."""

    def __init__(self, config: DeepMedicConfig, feature_maps: list[int], kernel_sizes: list[list[int]],
                 residual_layers: list[int], dropout_rates: list[float]):
        super().__init__()
        use_bn = config.bn_moving_average_batches > 0
        momentum = 2.0 / (config.bn_moving_average_batches + 1) if use_bn else 0.1
        channels = [config.in_channels] + list(feature_maps)
        self.layers = nn.ModuleList(
            DeepMedicConvBlock(
                channels[i], channels[i + 1], kernel_sizes[i],
                batch_norm=use_bn and i > 0,  # never on raw intensities
                activation_name="linear" if i == 0 else config.activation,
                dropout=dropout_rates[i] if dropout_rates else 0.0,
                prelu_init=config.prelu_init, bn_momentum=momentum,
            )
            for i in range(len(feature_maps))
        )
        self.residual_at = [i - 1 for i in residual_layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels-last activations: oneDNN's 3D convolutions of DeepMedic's layers run faster on them (RESULTS.md)
        # (a memory layout only, which the ONNX exporter cannot express: left out while exporting).
        if not torch.onnx.is_in_onnx_export():
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return run_blocks(self.layers, x, self.residual_at)


class DeepMedicModel(DeepMedicPreTrainedModel):
    """Pathways + concatenation + hidden FC layers; returns the features the classification layer reads."""

    def __init__(self, config: DeepMedicConfig):
        super().__init__(config)
        self.pathways = nn.ModuleList(
            DeepMedicPathway(config, maps, kernels, residual, dropout)
            for maps, kernels, residual, dropout in zip(
                config.pathway_feature_maps, config.pathway_kernel_sizes,
                config.pathway_residual_layers, config.pathway_dropout_rates)
        )
        self.fc_layers = nn.ModuleList(
            _fc_block(config, index, in_ch, out_ch)
            for index, (in_ch, out_ch) in enumerate(zip(_fc_channels(config)[:-1], config.fc_feature_maps))
        )
        self.fc_residual_at = [i - 1 for i in config.fc_residual_layers]
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, subsampled_values: Sequence[torch.Tensor] | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None, **kwargs):
        inputs, output = self.pathway_inputs(pixel_values, subsampled_values)
        outputs, layout = [], []
        for pathway, factor, x in zip(self.pathways, self.config.pathway_factors, inputs):
            outputs.append(upsample_repeat(pathway(x), factor, output))
            layout.append((outputs[-1].shape[1], factor))
        # The layout lets the first FC layer convolve the subsampled pathways' outputs before repeating them.
        features = run_blocks(self.fc_layers, torch.cat(outputs, dim=1), self.fc_residual_at, upsampled=layout)
        hidden = tuple(outputs) if output_hidden_states else None
        if return_dict is False:
            return (features, hidden) if hidden is not None else (features,)
        return BaseModelOutput(last_hidden_state=features, hidden_states=hidden)

    def pathway_inputs(self, pixel_values, subsampled_values) -> tuple[list[torch.Tensor], Triple]:
        """Validate the inputs; return each pathway's input (normal first) and the output segment size."""
        geometry, rf = self.geometry, self.receptive_field
        n_sub = len(self.config.subsample_factors)
        if subsampled_values is None and n_sub:
            self.validate_pixel_values(pixel_values, spatial_dims=3, min_size=geometry.context_size((1, 1, 1)))
            context = tuple(pixel_values.shape[2:])
            output = geometry.output_for_context(context)
            if output is None:
                raise InputError(
                    f"pixel_values: context patch {context} matches no output size; context_size(o) gives "
                    f"{geometry.context_size((1, 1, 1))} for o=1, {geometry.context_size((9, 9, 9))} for o=9 "
                    f"(or pass the normal segment with subsampled_values)")
            return geometry.extract(pixel_values, output), output
        self.validate_pixel_values(pixel_values, spatial_dims=3, min_size=rf)
        output = geometry.output_size(tuple(pixel_values.shape[2:]))
        subsampled_values = list(subsampled_values or [])
        expected = geometry.segment_sizes(output)[1:]
        if len(subsampled_values) != n_sub:
            raise InputError(f"subsampled_values: expected {n_sub} tensors (one per subsampled pathway, factors "
                             f"{self.config.subsample_factors}), got {len(subsampled_values)}")
        for i, (x, size) in enumerate(zip(subsampled_values, expected)):
            name = f"subsampled_values[{i}]"
            self.validate_pixel_values(x, spatial_dims=3, name=name)
            if tuple(x.shape[2:]) != size or x.shape[0] != pixel_values.shape[0]:
                raise InputError(f"{name}: expected shape {(pixel_values.shape[0], x.shape[1]) + size} for a "
                                 f"normal segment of {tuple(pixel_values.shape[2:])} (output {output}), "
                                 f"got {tuple(x.shape)}")
        return [pixel_values] + subsampled_values, output


def _fc_channels(config: DeepMedicConfig) -> list[int]:
    return [sum(maps[-1] for maps in config.pathway_feature_maps)] + list(config.fc_feature_maps) + [config.num_labels]


def _fc_block(config: DeepMedicConfig, index: int, in_channels: int, out_channels: int) -> DeepMedicConvBlock:
    """FC layer `index` (0 = first after the concatenation): BN -> activation -> dropout -> conv."""
    use_bn = config.bn_moving_average_batches > 0
    kernel = config.fc_first_kernel_size if index == 0 else [1, 1, 1]
    rates = config.fc_dropout_rates
    return DeepMedicConvBlock(
        in_channels, out_channels, kernel, batch_norm=use_bn, activation_name=config.activation,
        dropout=rates[index] if rates else 0.0, padding="mirror" if max(kernel) > 1 else "valid",
        prelu_init=config.prelu_init,
        bn_momentum=2.0 / (config.bn_moving_average_batches + 1) if use_bn else 0.1,
    )


class DeepMedicForSegmentation(DeepMedicPreTrainedModel):
    """DeepMedic with its classification layer: per-voxel logits over the central output segment.

    forward(pixel_values, subsampled_values=None, labels=None):
      - with `subsampled_values` (one tensor per subsampled pathway, sizes `segment_sizes(o)[1:]`),
        `pixel_values` is the normal-resolution segment (`segment_sizes(o)[0]`);
      - without, `pixel_values` is one full-resolution context patch (`context_size(o)`) and every pathway's
        input is cut from it exactly where the original samples it.
    labels (N, D, H, W) at the output size, or at the normal segment / context size (centre-cropped).
    The loss is the original's cross-entropy, -mean(w[y] * log(softmax + 1e-6)), weights `class_weights`.
    """

    def __init__(self, config: DeepMedicConfig):
        super().__init__(config)
        self.deepmedic = DeepMedicModel(config)
        channels = _fc_channels(config)
        self.classifier = _fc_block(config, len(config.fc_feature_maps), channels[-2], channels[-1])
        self.output_bias = nn.Parameter(torch.zeros(config.num_labels))
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, subsampled_values: Sequence[torch.Tensor] | None = None,
                labels: torch.Tensor | None = None, output_hidden_states: bool | None = None,
                return_dict: bool | None = None, **kwargs):
        base = self.deepmedic(pixel_values, subsampled_values, output_hidden_states=output_hidden_states)
        logits = self.classifier(base.last_hidden_state) + self.output_bias.view(1, -1, 1, 1, 1)
        loss = None
        if labels is not None:
            loss = deepmedic_cross_entropy(logits, self._labels_at_output(labels, logits, pixel_values),
                                           self.config.class_weights)
        if return_dict is False:
            out = (logits,) + ((base.hidden_states,) if base.hidden_states is not None else ())
            return ((loss,) + out) if loss is not None else out
        return SemanticSegmenterOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)

    def _labels_at_output(self, labels, logits, pixel_values) -> torch.Tensor:
        out_shape, in_shape = tuple(logits.shape[2:]), tuple(pixel_values.shape[2:])
        if not isinstance(labels, torch.Tensor) or labels.ndim != 4 or labels.shape[0] != logits.shape[0]:
            got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise InputError(f"labels: expected a (batch, D, H, W) tensor of class indices, got {got}")
        if tuple(labels.shape[1:]) == out_shape:
            return labels.long()
        if tuple(labels.shape[1:]) == in_shape:
            return crop_centre(labels[:, None], out_shape)[:, 0].long()
        raise InputError(f"labels: spatial size {tuple(labels.shape[1:])} is neither the output {out_shape} nor "
                         f"the input {in_shape}")

    @torch.inference_mode()
    def segment_volume(self, volume: torch.Tensor, batch_size: int = 10, progress: bool = True,
                       segment_size: int | Sequence[int] | None = None, roi_mask: torch.Tensor | None = None,
                       precision: str = "fp32", compile: bool = False):
        """Class probabilities (num_labels, D, H, W) for a whole volume (C, D, H, W); see inference_deepmedic.

        precision: "fp32" (exact, the default), "bf16" (autocast: faster on CPUs with native bf16, probabilities
        slightly different from float32) or "auto" (bf16 only where native, see `medhub.precision`).
        compile: torch.compile a frozen copy first, then run faster (benchmarks/RESULTS.md, row 5, has both)."""
        return segment_volume(self, volume, batch_size=batch_size, progress=progress,
                              segment_size=segment_size, roi_mask=roi_mask, precision=precision, compile=compile)


def deepmedic_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                            class_weights: Sequence[float] | None = None) -> torch.Tensor:
    """The original's x_entr: -(1/N) * sum over voxels of w[y] * log(p_y + 1e-6), p = softmax(logits)."""
    n_classes = logits.shape[1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise InputError(f"labels: values must be class indices in [0, {n_classes - 1}], "
                         f"got [{int(labels.min())}, {int(labels.max())}]")
    log_p = torch.log(torch.softmax(logits.float(), dim=1) + LOG_EPSILON)
    picked = log_p.gather(1, labels[:, None]).squeeze(1)
    if class_weights is not None:
        picked = picked * torch.as_tensor(class_weights, dtype=picked.dtype, device=picked.device)[labels]
    return -picked.mean()
