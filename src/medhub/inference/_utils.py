"""Argument checks and window bookkeeping shared by the whole-image inference strategies."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import InputError


def as_spatial_tuple(value, n_spatial: int, name: str) -> tuple[int, ...]:
    """Broadcast an int to every spatial axis, or check a sequence has one positive entry per axis."""
    values = (value,) * n_spatial if isinstance(value, int) else tuple(value)
    if len(values) != n_spatial or any(not isinstance(v, int) or v < 1 for v in values):
        raise InputError(f"{name}: expected a positive int or {n_spatial} positive ints, got {value!r}")
    return values


def check_image(image, min_spatial: int = 1) -> torch.Tensor:
    if not isinstance(image, torch.Tensor):
        raise InputError(f"image: expected a torch.Tensor (N, C, *spatial), got {type(image).__name__}")
    if image.ndim < 2 + min_spatial:
        raise InputError(f"image: expected shape (N, C, *spatial), got {tuple(image.shape)}")
    return image


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size: expected a positive int, got {batch_size!r}")


def window_slices(starts_per_axis: Sequence[Sequence[int]], size: Sequence[int]) -> list[tuple[slice, ...]]:
    """Cartesian product of per-axis window starts, as tuples of spatial slices."""
    grids = torch.cartesian_prod(*[torch.tensor(s) for s in starts_per_axis]).reshape(-1, len(size))
    return [tuple(slice(int(b), int(b) + w) for b, w in zip(row, size)) for row in grids]


def check_output(pred: torch.Tensor, n_windows: int, expected: tuple[int, ...], what: str) -> None:
    if not isinstance(pred, torch.Tensor) or pred.ndim != 2 + len(expected):
        got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
        raise InputError(f"model_fn: expected a tensor (B, C, *spatial) for a batch of windows, got {got}")
    if pred.shape[0] != n_windows or tuple(pred.shape[2:]) != expected:
        raise InputError(
            f"model_fn returned {tuple(pred.shape)} for {n_windows} windows; expected spatial size {expected} "
            f"({what})"
        )
