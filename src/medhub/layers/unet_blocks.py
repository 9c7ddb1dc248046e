"""The building blocks of U-Net-shaped networks (Ronneberger et al. 2015), 2D and 3D through `spatial_dims`.

- `DoubleConv`: two 3x3 convolutions, each followed by an optional norm and a ReLU. With
  padding="valid" (the paper) each convolution trims one pixel per side, so a block shrinks every
  spatial size by 4; with padding="same" sizes are kept.
- `UpBlock`: doubles the resolution, concatenates the (centre-cropped) skip connection and applies a
  `DoubleConv`. "transposed" upsampling is the paper's 2x2 up-convolution that halves the channels;
  "interpolate" is bilinear/trilinear resizing followed by a 1x1 convolution that halves the channels
  (so the size arithmetic and channel counts are the same as with "transposed").

The modules keep their layers as flat attributes (`conv1`, `norm1`, `conv2`, `norm2`, `up`) because the
state-dict keys are public API.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cropping import center_crop
from .factories import conv, conv_transpose, norm

PADDINGS = ("valid", "same")
UPSAMPLINGS = ("transposed", "interpolate")
INTERPOLATION_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class DoubleConv(nn.Module):
    """conv3x3 -> norm -> ReLU -> conv3x3 -> norm -> ReLU (norm is the identity when `norm_kind` is None)."""

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 2, padding: str = "valid",
                 norm_kind: str | None = None):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"DoubleConv: padding must be one of {PADDINGS}, got {padding!r}")
        pad = 1 if padding == "same" else 0
        conv_cls = conv(spatial_dims)
        self.conv1 = conv_cls(in_channels, out_channels, kernel_size=3, padding=pad)
        self.norm1 = norm(norm_kind, spatial_dims, out_channels)
        self.conv2 = conv_cls(out_channels, out_channels, kernel_size=3, padding=pad)
        self.norm2 = norm(norm_kind, spatial_dims, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(x)))


class UpBlock(DoubleConv):
    """Upsample x2 (`up`), concatenate [skip, upsampled] and apply the double convolution.

    The skip (encoder feature) is larger than the upsampled map with valid padding; it is centre-cropped
    to it, the paper's "crop and concatenate".
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, spatial_dims: int = 2,
                 padding: str = "valid", norm_kind: str | None = None, upsampling: str = "transposed"):
        super().__init__(skip_channels + out_channels, out_channels, spatial_dims, padding, norm_kind)
        if upsampling == "transposed":
            self.up = conv_transpose(spatial_dims)(in_channels, out_channels, kernel_size=2, stride=2)
        elif upsampling == "interpolate":
            self.up = conv(spatial_dims)(in_channels, out_channels, kernel_size=1)
        else:
            raise ValueError(f"UpBlock: upsampling must be one of {UPSAMPLINGS}, got {upsampling!r}")
        self.upsampling = upsampling
        self.spatial_dims = spatial_dims

    def upsample(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsampling == "transposed":
            return self.up(x)
        x = F.interpolate(x, scale_factor=2, mode=INTERPOLATION_MODES[self.spatial_dims], align_corners=False)
        return self.up(x)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.upsample(x)
        return super().forward(crop_and_concat(skip, x))


def crop_and_concat(skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Centre-crop `skip` to the spatial size of `x` and concatenate them along channels ([skip, x])."""
    return torch.cat([center_crop(skip, x.shape[2:]), x], dim=1)


def resize_to(x: torch.Tensor, size: tuple[int, ...] | torch.Size) -> torch.Tensor:
    """Bilinear/trilinear resize of `x` (N, C, *spatial) to `size` (a no-op when it already has it)."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode=INTERPOLATION_MODES[x.ndim - 2], align_corners=False)
