"""Configuration of Attention U-Net (Oktay et al., MIDL 2018).

The defaults follow the paper and the authors' reference implementation for 3D abdominal CT
(`unet_CT_single_att_dsv_3D`): 3D, 1 input channel, filters 16..256 over 4 poolings, padded 3x3x3
convolutions with batch norm, additive grid attention gates on the skip connections of every level but
the finest, trilinear upsampling and deep supervision; the loss defaults to Dice + cross-entropy.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MedPreTrainedConfig, check_choice, check_unet_fields
from ...errors import ConfigError


@strict
class AttentionUNetConfig(MedPreTrainedConfig):
    """
    spatial_dims: 2 or 3.
    base_width: filters of the first level (reference implementation 16); level i has base_width * 2**i.
    depth: number of 2x2(x2) max-poolings, at least 2 (the gates sit on levels 1..depth-1).
    padding: "same" only (spatial sizes must be divisible by 2**depth); the field exists so a config
        asking for "valid" is refused with a clear error instead of silently padded.
    norm: "batch" (paper), "instance" or None, after every 3x3 convolution and in the gates' output.
    deep_supervision: add 1x1 logits heads on the coarser decoder levels, upsampled to the input size;
        the loss is then the mean of the losses of the final and the extra logits.
    loss: "dice_ce" (default), "ce" or "weighted_ce" (with a `weight_map`, as the U-Net paper).
    """

    model_type = "medhub-attention-unet"

    spatial_dims: int = 3
    base_width: int = 16
    depth: int = 4
    padding: str = "same"
    norm: str | None = "batch"
    deep_supervision: bool = True
    loss: str = "dice_ce"

    # The paper's reference 3D CT network: 1 channel, 2 classes, 16..256 filters, batch norm, deep supervision.
    PAPER = dict(spatial_dims=3, in_channels=1, num_labels=2, base_width=16, depth=4, padding="same", norm="batch",
                 deep_supervision=True, loss="dice_ce")
    TINY = dict(spatial_dims=2, base_width=4, depth=3, num_labels=3)

    def check(self) -> None:
        check_unet_fields(self, min_depth=2)
        if self.padding == "valid":
            raise ConfigError("AttentionUNetConfig.padding='valid' is not supported: the attention gates need the "
                              "skip and gating grids aligned; use padding='same'")
        check_choice(self, "padding", ("same",))
        if not isinstance(self.deep_supervision, bool):
            raise ConfigError(f"AttentionUNetConfig.deep_supervision={self.deep_supervision!r}: expected true/false")
