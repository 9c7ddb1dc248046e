"""Configuration of U-Net (Ronneberger, Fischer and Brox, MICCAI 2015).

The defaults are the paper's network: 1 input channel, 2 classes, 64 filters doubling over 4 poolings
to 1024, unpadded ("valid") 3x3 convolutions with crop-and-concatenate skips (a 572x572 tile gives a
388x388 map), 2x2 up-convolutions, no normalisation, dropout p=0.5 at the end of the contracting path
and the weighted pixel-wise cross-entropy. Everything else is an opt-in flag.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict

from ...configuration_utils import MedPreTrainedConfig, check_choice, check_unet_fields
from ...errors import ConfigError


@strict
class UNetConfig(MedPreTrainedConfig):
    """
    spatial_dims: 2 (images) or 3 (volumes; then every 3x3 is 3x3x3 and every 2x2 is 2x2x2).
    base_width: filters of the first level (paper 64); level i has base_width * 2**i.
    depth: number of 2x2 max-poolings (paper 4).
    padding: "valid" (paper; output smaller than input) or "same" (output size = input size, which must
        then be divisible by 2**depth).
    norm: None (paper), "batch" or "instance" after every 3x3 convolution.
    upsampling: "transposed" (paper's 2x2 up-conv halving channels) or "interpolate" (bilinear/trilinear
        resize + 1x1 conv halving channels).
    dropout: element-wise drop-out probability applied to the outputs of the deepest encoder block and
        of the bottleneck, the paper's "drop-out layers at the end of the contracting path" (0 disables).
    loss: the loss computed when labels are given: "weighted_ce" (paper, with a `weight_map`), "ce" or
        "dice_ce".
    """

    model_type = "medhub-unet"

    spatial_dims: int = 2
    base_width: int = 64
    depth: int = 4
    padding: str = "valid"
    norm: str | None = None
    upsampling: str = "transposed"
    dropout: float = 0.5
    loss: str = "weighted_ce"

    # The network of the paper (Fig. 1): 1 channel in, 2 classes, 64..1024 filters, valid padding.
    PAPER = dict(spatial_dims=2, in_channels=1, num_labels=2, base_width=64, depth=4, padding="valid", norm=None,
                 upsampling="transposed", dropout=0.5, loss="weighted_ce")
    TINY = dict(base_width=4, depth=2, padding="valid", num_labels=2)

    def check(self) -> None:
        check_unet_fields(self)
        check_choice(self, "padding", ("valid", "same"))
        check_choice(self, "upsampling", ("transposed", "interpolate"))
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ConfigError(f"UNetConfig.dropout={self.dropout!r}: expected a probability in [0, 1)")
