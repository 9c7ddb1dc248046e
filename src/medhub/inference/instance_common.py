"""What the instance post-processings (`membrane_watershed`, `nuclei_instances`) share: the check of a probability
map, the check of a `weights_info["instances"]` entry's arguments, and the removal of small objects."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError

__all__ = ["check_probability_map", "checked_options", "drop_small_objects"]


def check_probability_map(probability, what: str) -> np.ndarray:
    """One 2D map of finite probabilities in [0, 1] as float64 (InputError naming `what` otherwise)."""
    prob = np.asarray(probability)
    if prob.ndim != 2:
        raise InputError(f"{what}: expected one 2D (H, W) probability map, got shape {prob.shape}")
    if not np.issubdtype(prob.dtype, np.floating):
        raise InputError(f"{what}: expected probabilities as floats in [0, 1], got dtype {prob.dtype}")
    if not np.isfinite(prob).all():
        raise InputError(f"{what}: the probability map has NaN or infinite values")
    if prob.size and (prob.min() < 0.0 or prob.max() > 1.0):
        raise InputError(f"{what}: expected probabilities in [0, 1], got values in "
                         f"[{prob.min():.3g}, {prob.max():.3g}] (logits? apply softmax first)")
    return prob.astype(np.float64)


def checked_options(instances: dict, method: str, ranges: dict, where: str, open_bounds: tuple[str, ...] = (),
                    error=None) -> dict:
    """The arguments of an `{method: <method>, **arguments}` entry, each a number in its range of `ranges`
    (integers where the range's bounds are; `open_bounds` names the ones whose bounds are excluded);
    `error` (default ConfigError) otherwise, naming `where` and the key."""
    error = error or ConfigError
    if not isinstance(instances, dict):
        raise error(f"{where}: expected an object {{method: '{method}', ...}}, "
                    f"got {type(instances).__name__} {str(instances)[:60]!r}")
    options = dict(instances)
    given = options.pop("method", method)
    if given != method:
        raise error(f"{where}.method: expected {method!r}, got {given!r}")
    unknown = set(options) - set(ranges)
    if unknown:
        raise error(f"{where}: unknown {method} argument(s) {sorted(unknown)}; expected {', '.join(ranges)}")
    for name, value in options.items():
        lo, hi = ranges[name]
        is_number = isinstance(value, int if isinstance(lo, int) else (int, float)) and not isinstance(value, bool)
        if not is_number or not lo <= value <= hi or (name in open_bounds and value in (lo, hi)):
            kind = "an integer" if isinstance(lo, int) else "a number"
            bounds = f"({lo}, {hi})" if name in open_bounds else f"[{lo}, {hi}]"
            raise error(f"{where}.{name}={value!r}: expected {kind} in {bounds}")
    return options


def drop_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Objects of fewer than `min_size` pixels removed, the rest renumbered 1..n in order of their first pixel."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    relabel = np.zeros(len(sizes), dtype=np.int32)
    relabel[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return relabel[labels]
