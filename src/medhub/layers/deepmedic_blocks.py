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
import torch.nn.functional as F
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
    """Repeat every voxel `factors` times per axis, then keep the first `size` voxels (the original's crop).

    Done as one broadcast copy in channels-last order (a view when no factor exceeds 1), so the result is
    channels-last like the convolutions around it (repeat_interleave copies once per axis, channels first).
    """
    n, c, d, h, w = x.shape
    f = tuple(factors)
    grid = x.permute(0, 2, 3, 4, 1)[:, :, None, :, None, :, None, :]
    grid = grid.expand(n, d, f[0], h, f[1], w, f[2], c).reshape(n, d * f[0], h * f[1], w * f[2], c)
    return grid[:, :size[0], :size[1], :size[2]].permute(0, 4, 1, 2, 3)


def conv3d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """F.conv3d without bias or padding; a 1^3 kernel is a matrix product over channels (with one thread,
    F.conv3d takes a slow unblocked path for it on CPU, about 2x slower than the matrix product)."""
    if weight.shape[2:] == (1, 1, 1):
        last = x.ndim - 1  # non-negative dims: the ONNX exporter writes a negative one into a Transpose as is
        return F.linear(x.movedim(1, last), weight.flatten(1)).movedim(last, 1)
    return F.conv3d(x, weight)


def phase_classes(factor: int, kernel: int) -> tuple[list[int], list[tuple[int, list[int]]]]:
    """Where a mirror-padded kernel of `kernel` (1 or 3) voxels reads a voxel-repeated axis, per output phase.

    Output voxel i = factor * k + r reads, with tap t, the coarse voxel k + (r + t - pad) // factor. Phases
    with the same offsets form a class (for k = 3, f >= 3: r = 0 reads k-1 and k, the middle phases only k,
    r = f-1 reads k and k+1). Returns the class of every phase and, per class, its lowest offset and the
    offset of every tap relative to it.
    """
    pad = (kernel - 1) // 2
    class_of, classes = [], []
    for r in range(factor):
        offsets = [(r + t - pad) // factor for t in range(kernel)]
        low = min(offsets)
        if not classes or classes[-1] != (low, [d - low for d in offsets]):
            classes.append((low, [d - low for d in offsets]))
        class_of.append(len(classes) - 1)
    return class_of, classes


def conv_upsampled(coarse: torch.Tensor, weight: torch.Tensor, factors: Sequence[int],
                   size: Sequence[int]) -> torch.Tensor:
    """conv3d(pad_symmetric(upsample_repeat(coarse, factors, size), k - 1), weight), computed on the coarse grid.

    Every output phase class (see `phase_classes`; 27 classes for k = 3, f >= 3) is one small convolution of
    the coarse input with the kernel's taps summed where they read the same coarse voxel: 5^3 instead of
    27 f^3 multiply-adds per coarse voxel (5.8x fewer for f = 3, 27x for f = 5); one gather then lays the
    classes out at full resolution. The symmetric padding of the repeated input equals a replicate padding
    of the coarse one because `size` never cuts a coarse voxel's repeats short at an axis end it pads
    (DeepMedic's subsampled outputs have ceil(size / f) voxels). Kernels must have 1 or 3 voxels per axis.
    """
    kernel = tuple(weight.shape[2:])
    if any(k not in (1, 3) for k in kernel):
        raise ValueError(f"conv_upsampled: kernels of 1 or 3 voxels per axis only, got {kernel}")
    coarse = coarse[(slice(None), slice(None)) + tuple(slice(0, -(-s // f)) for s, f in zip(size, factors))]
    counts = coarse.shape[2:]
    pads = [(k - 1) // 2 for k in kernel]
    coarse = F.pad(coarse, [p for p in reversed(pads) for _ in (0, 1)], mode="replicate") if any(pads) else coarse
    axes = [phase_classes(f, k) for f, k in zip(factors, kernel)]
    # Summed taps for every (class, offset) of every axis, one axis at a time (the rows are the kernel's new
    # entries along that axis, class after class), in the weight's precision even under autocast.
    summed = weight
    with torch.autocast(weight.device.type, enabled=False):
        for axis, (_, classes) in enumerate(axes):
            rows = [[float(t == offset) for t in taps] for _, taps in classes for offset in range(max(taps) + 1)]
            summed = torch.tensordot(summed, weight.new_tensor(rows), dims=([axis + 2], [1]))
            summed = summed.movedim(summed.ndim - 1, axis + 2)
    # split (not indexing) so that the backward pass concatenates the kernels' gradients once
    spans = [[max(taps) + 1 for _, taps in classes] for _, classes in axes]
    outputs = []
    for (low_x, _), w_x in zip(axes[0][1], summed.split(spans[0], dim=2)):
        for (low_y, _), w_xy in zip(axes[1][1], w_x.split(spans[1], dim=3)):
            for (low_z, _), w in zip(axes[2][1], w_xy.split(spans[2], dim=4)):
                box = tuple(slice(p + low, p + low + count + n - 1)
                            for p, low, count, n in zip(pads, (low_x, low_y, low_z), counts, w.shape[2:]))
                outputs.append(conv3d(coarse[(slice(None), slice(None)) + box], w).permute(0, 2, 3, 4, 1))
    # Output voxel (i, j, l) is coarse voxel (i // f, ...) of the class of its phases (i % f, ...).
    index = torch.zeros((), dtype=torch.long)
    for (class_of, classes), f, s, count in zip(axes, factors, size, counts):
        i = torch.arange(s)
        index = index[..., None] * (len(classes) * count) + torch.tensor(class_of)[i % f] * count + i // f
    n_classes = [len(classes) for _, classes in axes]
    stacked = torch.stack(outputs, dim=1).view(coarse.shape[0], *n_classes, *counts, weight.shape[0])
    stacked = stacked.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(coarse.shape[0], -1, weight.shape[0])
    out = stacked.index_select(1, index.flatten().to(stacked.device))
    return out.view(coarse.shape[0], *size, weight.shape[0]).permute(0, 4, 1, 2, 3)


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

    def forward(self, x: torch.Tensor, upsampled: Sequence[tuple[int, Sequence[int]]] = ()) -> torch.Tensor:
        """upsampled: optional (channels, factors) per run of input channels, in order, saying that those
        channels are `upsample_repeat(..., factors, x's size)` of a coarser tensor (the concatenation DeepMedic's
        first FC layer reads). The result is the same; the repeated channels are convolved on the coarse grid."""
        x = self.norm(x) if hasattr(self, "norm") else x + self.bias.view(1, -1, 1, 1, 1)
        x = self.dropout(self.act(x))
        if upsampled and self._convolves_coarse():
            return self._conv_by_parts(x, upsampled)
        if self.padding == "mirror":
            x = pad_symmetric(x, [k - 1 for k in self.kernel_size])
        return conv3d(x, self.conv.weight)

    def _convolves_coarse(self) -> bool:
        # Normalisation and activation act voxel by voxel, so repeated voxels stay equal; dropout would not.
        dropping = self.training and isinstance(self.dropout, nn.Dropout)
        kernels_ok = all(k in (1, 3) for k in self.kernel_size)
        return kernels_ok and not dropping and (self.padding == "mirror" or max(self.kernel_size) == 1) \
            and not torch.onnx.is_in_onnx_export()  # exported graphs take the plain path (same function)

    def _conv_by_parts(self, x: torch.Tensor, upsampled: Sequence[tuple[int, Sequence[int]]]) -> torch.Tensor:
        channels = [c for c, _ in upsampled]
        if sum(channels) != x.shape[1]:
            raise ValueError(f"upsampled: the parts cover {sum(channels)} channels, the input has {x.shape[1]}")
        size, out = x.shape[2:], None
        # split (not slicing) so that the backward pass concatenates the parts' gradients once
        for (_, factors), part, w in zip(upsampled, x.split(channels, dim=1), self.conv.weight.split(channels, dim=1)):
            if all(f == 1 for f in factors):
                y = conv3d(pad_symmetric(part, [k - 1 for k in self.kernel_size]) if self.padding == "mirror"
                           else part, w)
            else:  # the first voxel of every repeated block is the coarse voxel
                y = conv_upsampled(part[(slice(None), slice(None)) + tuple(slice(None, None, f) for f in factors)],
                                   w, factors, size)
            out = y if out is None else out + y
        return out


def run_blocks(blocks: Sequence[nn.Module], x: torch.Tensor, residual_at: Sequence[int],
               upsampled: Sequence[tuple[int, Sequence[int]]] = ()) -> torch.Tensor:
    """Apply `blocks` in order; after block i (0-based) in `residual_at`, add the input of block i-1.

    This is the original's residual rule: numbering layers from 1, a residual at layer 4 adds the
    input of layer 3 (centre-cropped, channel-zero-padded) to the output of layer 4.
    upsampled: passed to the first block (see DeepMedicConvBlock.forward).
    """
    input_of_previous = None
    for index, block in enumerate(blocks):
        out = block(x, upsampled) if index == 0 and upsampled else block(x)
        if index in residual_at:
            out = add_residual(out, input_of_previous)
        input_of_previous, x = x, out
    return x
