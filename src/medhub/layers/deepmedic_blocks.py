"""The building blocks of DeepMedic (Kamnitsas et al., MedIA 2017), as its original code defines them.

Every convolution of DeepMedic sits in a pre-activation block (He et al., "Identity Mappings", 2016):

    input -> [batch norm | per-channel bias] -> activation -> dropout -> convolution (no bias)

The first block of a multi-scale pathway sees raw image intensities, so it has no batch norm and no
non-linearity, only a learnt per-channel bias on its input (2 parameters for FLAIR + T1c); the last
convolution's missing bias is the separate output bias that the original adds just before the softmax.
The helpers below reproduce the original's cropping, residual, mirror-padding and up-sampling rules,
index for index, because they fix which voxel a prediction belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = ("prelu", "relu", "elu", "linear")


def crop_centre(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Central part of `x` (N, C, *spatial) of `size`; for even sizes the centre is one voxel low, as the original."""
    slices = [slice(None), slice(None)]
    for have, want in zip(x.shape[2:], size):
        start = (have - 1) // 2 - (want - 1) // 2
        slices.append(slice(start, start + want))
    return x[tuple(slices)]


def add_residual(deeper: torch.Tensor, earlier: torch.Tensor) -> torch.Tensor:
    """deeper + centre crop of earlier; missing channels of `earlier` count as zeros, extra ones are dropped."""
    earlier = crop_centre(earlier, deeper.shape[2:])
    n_deep, n_early = deeper.shape[1], earlier.shape[1]
    if n_deep == n_early:
        return deeper + earlier
    if n_deep < n_early:
        return deeper + earlier[:, :n_deep]
    head = deeper[:, :n_early] + earlier
    return torch.cat([head, deeper[:, n_early:]], dim=1)


def pad_symmetric(x: torch.Tensor, total_pad: Sequence[int]) -> torch.Tensor:
    """Mirror-pad the spatial dims, edge voxel included (numpy 'symmetric'); odd totals put the extra voxel high.

    This is the original's `pad_by_mirroring`, used by a same-size ("MIRROR") convolution.
    """
    for axis, total in enumerate(total_pad):
        if total <= 0:
            continue
        dim = axis + 2
        low, high = total // 2, (total + 1) // 2
        if max(low, high) > x.shape[dim]:
            raise ValueError(f"pad_symmetric: cannot mirror {max(low, high)} voxels of a size-{x.shape[dim]} axis")
        parts = []
        if low:
            parts.append(x.narrow(dim, 0, low).flip(dim))
        parts.append(x)
        if high:
            parts.append(x.narrow(dim, x.shape[dim] - high, high).flip(dim))
        x = torch.cat(parts, dim=dim)
    return x


def upsample_repeat(x: torch.Tensor, factors: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """Repeat every voxel `factors` times per axis, then keep the first `size` voxels (the original's crop)."""
    for axis, factor in enumerate(factors):
        if factor > 1:
            x = x.repeat_interleave(factor, dim=axis + 2)
    return x[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)]


def activation(name: str, channels: int, prelu_init: float) -> nn.Module:
    if name == "prelu":
        return nn.PReLU(channels, init=prelu_init)
    if name == "relu":
        return nn.ReLU()
    if name == "elu":
        return nn.ELU()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"activation: expected one of {list(ACTIVATIONS)}, got {name!r}")


class DeepMedicConvBlock(nn.Module):
    """[batch norm | bias] -> activation -> dropout -> 3D convolution without bias.

    padding: "valid" (DeepMedic's pathways shrink by kernel-1 per layer) or "mirror" (same size, the
    original's symmetric mirror padding; used by the first fully connected layer when its kernel is > 1).
    Dropout is element-wise, like the original's; torch scales kept units by 1/(1-p) during training
    instead of scaling by (1-p) at inference, which gives the same expected activations.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int], *, batch_norm: bool,
                 activation_name: str, dropout: float = 0.0, padding: str = "valid", prelu_init: float = 0.01,
                 bn_momentum: float = 0.1):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.padding = padding
        if batch_norm:
            self.norm = nn.BatchNorm3d(in_channels, momentum=bn_momentum)
        else:  # the original's BiasLayer: a learnt per-channel bias on the block's input
            self.bias = nn.Parameter(torch.zeros(in_channels))
        self.act = activation(activation_name, in_channels, prelu_init)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x) if hasattr(self, "norm") else x + self.bias.view(1, -1, 1, 1, 1)
        x = self.dropout(self.act(x))
        if self.padding == "mirror":
            x = pad_symmetric(x, [k - 1 for k in self.kernel_size])
        return self.conv(x)


def run_blocks(blocks: Sequence[nn.Module], x: torch.Tensor, residual_at: Sequence[int]) -> torch.Tensor:
    """Apply `blocks` in order; after block i (0-based) in `residual_at`, add the input of block i-1.

    This is the original's residual rule: numbering layers from 1, a residual at layer 4 adds the
    input of layer 3 (centre-cropped, channel-zero-padded) to the output of layer 4.
    """
    input_of_previous = None
    for index, block in enumerate(blocks):
        out = block(x)
        if index in residual_at:
            out = add_residual(out, input_of_previous)
        input_of_previous, x = x, out
    return x
