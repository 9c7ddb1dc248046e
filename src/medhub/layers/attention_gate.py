"""Additive grid attention gate of Attention U-Net (Oktay et al. 2018), 2D and 3D.

The gate lets a coarse decoder feature `g` (the gating signal, carrying context) decide which pixels of
a skip connection `x` are passed on. Following the paper's equations and the authors' reference
implementation (GridAttentionBlock, "concatenation" mode, sub-sample factor 2):

    theta_x = W_x x             strided 2x2(x2) conv, no bias: x subsampled to the gating grid
    phi_g   = W_g g + b_g       1x1 conv, resized to theta_x's grid if the sizes differ
    q       = psi^T ReLU(theta_x + phi_g) + b_psi      1x1 conv to one channel
    alpha   = sigmoid(q), resampled (bi/trilinear) back to x's grid
    output  = W(alpha * x)      1x1 conv + batch norm (as the reference implementation)

`alpha` (N, 1, *x_spatial), in [0, 1], is returned too so models can expose the attention maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .factories import conv, norm
from .unet_blocks import resize_to


class AttentionGate(nn.Module):
    def __init__(self, in_channels: int, gating_channels: int, inter_channels: int | None = None,
                 spatial_dims: int = 2, norm_kind: str | None = "batch"):
        super().__init__()
        inter_channels = inter_channels or max(in_channels // 2, 1)
        conv_cls = conv(spatial_dims)
        self.theta = conv_cls(in_channels, inter_channels, kernel_size=2, stride=2, bias=False)
        self.phi = conv_cls(gating_channels, inter_channels, kernel_size=1)
        self.psi = conv_cls(inter_channels, 1, kernel_size=1)
        self.output_conv = conv_cls(in_channels, in_channels, kernel_size=1)
        self.output_norm = norm(norm_kind, spatial_dims, in_channels)

    def forward(self, x: torch.Tensor, gating: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (gated skip feature W(alpha * x), attention coefficients alpha)."""
        theta_x = self.theta(x)
        phi_g = resize_to(self.phi(gating), theta_x.shape[2:])
        alpha = torch.sigmoid(self.psi(F.relu(theta_x + phi_g)))
        alpha = resize_to(alpha, x.shape[2:])
        return self.output_norm(self.output_conv(alpha * x)), alpha
