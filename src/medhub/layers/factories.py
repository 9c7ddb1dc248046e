"""One code path for 2D and 3D: layer constructors chosen by `spatial_dims` (as MONAI's factories)."""

from __future__ import annotations

from torch import nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE_NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}


def _pick(table: dict, spatial_dims: int, what: str):
    if spatial_dims not in table:
        raise ValueError(f"{what}: spatial_dims must be one of {sorted(table)}, got {spatial_dims}")
    return table[spatial_dims]


def conv(spatial_dims: int) -> type[nn.Module]:
    return _pick(_CONV, spatial_dims, "conv")


def conv_transpose(spatial_dims: int) -> type[nn.Module]:
    return _pick(_CONV_T, spatial_dims, "conv_transpose")


def max_pool(spatial_dims: int) -> type[nn.Module]:
    return _pick(_MAX_POOL, spatial_dims, "max_pool")


def avg_pool(spatial_dims: int) -> type[nn.Module]:
    return _pick(_AVG_POOL, spatial_dims, "avg_pool")


def dropout(spatial_dims: int) -> type[nn.Module]:
    """Channel-wise dropout (whole feature maps), the usual choice for convolutional layers."""
    return _pick(_DROPOUT, spatial_dims, "dropout")


def norm(kind: str | None, spatial_dims: int, channels: int) -> nn.Module:
    """'batch', 'instance' (affine) or None (identity)."""
    if kind in (None, "none"):
        return nn.Identity()
    if kind == "batch":
        return _pick(_BATCH_NORM, spatial_dims, "norm")(channels)
    if kind == "instance":
        return _pick(_INSTANCE_NORM, spatial_dims, "norm")(channels, affine=True)
    raise ValueError(f"norm: expected 'batch', 'instance' or None, got {kind!r}")
