"""The network side of every medhub model: what a model computes and validates, without how medhub loads it.

`MedModelBase` is a `transformers.PreTrainedModel` with what every family shares: the paper and task it
implements, its image processor class, input validation (`validate_pixel_values`, the same clear errors for
every family), weights initialisation and whole-image inference (`infer`, through the inferer the family
chooses; see `medhub.inference.inferers`). `medhub.modeling_utils.MedPreTrainedModel` adds medhub's loading,
saving and sharing on top; a Hub repo's remote code (`medhub.remote_code`) uses this class as it is, so plain
transformers loads the same network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init

from .configuration_utils import MedPreTrainedConfig
from .errors import InputError
from .inference.inferers import ClassifierInferer, InferenceSettings, Inferer, SlidingWindowInferer


@dataclass(frozen=True)
class Paper:
    """The paper a family implements, as its model card cites it: title, URL, BibTeX, and a short summary of the
    architecture."""

    title: str
    url: str
    bibtex: str
    summary: str


class MedModelBase(PreTrainedModel):
    config_class = MedPreTrainedConfig
    base_model_prefix = "medhub"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    # What the generated model card says about the architecture (set by each family).
    paper: ClassVar[Paper] = Paper("", "", "", "")
    pipeline_tag: ClassVar[str] = ""
    # The family's image processor class (preprocessor_config.json), registered with AutoImageProcessor.
    processor_class: ClassVar[type | None] = None

    def __init__(self, config: MedPreTrainedConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        # An image processor that travels with the weights (preprocessor_config.json); not a module.
        self.image_processor = None

    @property
    def spatial_dims(self) -> int:
        """2 for images, 3 for volumes."""
        return int(getattr(self.config, "spatial_dims", 2) or 2)

    def output_options(self, output_hidden_states: bool | None, return_dict: bool | None) -> tuple[bool, bool]:
        """(output_hidden_states, return_dict) of a forward call: the arguments given, else the config's."""
        return (bool(self.config.output_hidden_states if output_hidden_states is None else output_hidden_states),
                bool(self.config.return_dict if return_dict is None else return_dict))

    @property
    def input_size_multiple(self) -> int:
        """Input sizes the network takes are multiples of this (U-Nets: 2**depth)."""
        return 1

    def example_input_size(self) -> tuple[int, ...]:
        """A small spatial size the network takes (families override): used for `dummy_inputs` and tests."""
        return (32,) * self.spatial_dims

    @property
    def dummy_inputs(self) -> dict[str, torch.Tensor]:
        """A random batch of two inputs of `example_input_size()` (transformers' hook for dummy inputs)."""
        return {"pixel_values": torch.randn(2, self.config.in_channels, *self.example_input_size())}

    # -- whole-image inference: the one way every caller runs the model on a whole image --------------------
    def inferer(self, **overrides: Any) -> Inferer:
        """This model's inferer with its settings: defaults, then `weights_info["inference"]` (saved with the
        weights), then `overrides` (InferenceSettings fields; None leaves a setting as it is)."""
        saved = (getattr(self.config, "weights_info", None) or {}).get("inference")
        settings = InferenceSettings.from_dict(saved).merged(**overrides)
        return self.inferer_class()(settings)

    def inferer_class(self) -> type[Inferer]:
        """Classifiers: one forward pass; segmenters: Gaussian sliding window (families override)."""
        return ClassifierInferer if self.pipeline_tag == "image-classification" else SlidingWindowInferer

    def infer(self, pixel_values: torch.Tensor, *, roi_mask: Any = None, tta: bool = False,
              **overrides: Any) -> torch.Tensor:
        """Class probabilities (N, num_labels, *spatial) on the CPU for a preprocessed input (N, C, *spatial).

        roi_mask: (*spatial) mask restricting a segmentation (outside it: background); tta: average flips;
        overrides: InferenceSettings fields (roi_size, overlap, batch_size, roi_margin, tta_axes, precision)."""
        return self.inferer(**overrides)(self, pixel_values, roi_mask=roi_mask, tta=tta)

    # -- weights initialisation: He (Kaiming) normal for convolutions, as U-Net/DeepMedic/ResNet use ----
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm,
                                 nn.InstanceNorm2d, nn.InstanceNorm3d)):
            if getattr(module, "weight", None) is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
            if getattr(module, "num_batches_tracked", None) is not None:
                init.zeros_(module.num_batches_tracked)

    # -- input validation shared by every family ------------------------------------------------------
    def validate_pixel_values(self, pixel_values: Any, spatial_dims: int | None = None,
                              min_size: int | tuple[int, ...] | None = None, name: str = "pixel_values") -> None:
        """Raise `InputError` for a non-tensor, wrong rank, wrong channel count, too small or non-finite input."""
        spatial_dims = spatial_dims or getattr(self.config, "spatial_dims", 2)
        if not isinstance(pixel_values, torch.Tensor):
            raise InputError(f"{name}: expected a torch.Tensor, got {type(pixel_values).__name__}")
        expected = "(batch, channels, " + ", ".join("HWD"[:spatial_dims] if spatial_dims < 3 else "DHW") + ")"
        if pixel_values.ndim != spatial_dims + 2:
            raise InputError(f"{name}: expected a {spatial_dims + 2}-D tensor {expected}, got shape "
                             f"{tuple(pixel_values.shape)}")
        if pixel_values.shape[1] != self.config.in_channels:
            names = f" {self.config.channel_names}" if self.config.channel_names else ""
            raise InputError(
                f"{name}: expected {self.config.in_channels} channel(s){names} in dim 1, got {pixel_values.shape[1]} "
                f"(shape {tuple(pixel_values.shape)})"
            )
        if min_size is not None:
            mins = (min_size,) * spatial_dims if isinstance(min_size, int) else tuple(min_size)
            if any(s < m for s, m in zip(pixel_values.shape[2:], mins)):
                raise InputError(
                    f"{name}: spatial size {tuple(pixel_values.shape[2:])} is too small for this model; "
                    f"the minimum is {mins}"
                )
        if pixel_values.is_floating_point() and not pixel_values.is_meta and not torch.isfinite(pixel_values).all():
            bad = (~torch.isfinite(pixel_values)).sum().item()
            raise InputError(f"{name}: {bad} non-finite value(s) (NaN or Inf); clean or mask the image first")
