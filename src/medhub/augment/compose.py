"""Chaining transforms, and running them on the fly from a `datasets.Dataset` in a DataLoader.

`Compose(transforms, seed)` owns one `numpy.random.Generator`, so a seed fixes the whole stream of
augmentations. `Compose.batch_transform()` (or `as_batch_transform`) turns it into the function that
`datasets.Dataset.set_transform` / `with_transform` expect: a batch dict of columns in, a batch dict
of columns out, each row augmented afresh every time it is read. Inside DataLoader workers every
worker would otherwise copy the same generator and repeat the same draws, so the first call in a
worker re-seeds from (seed, the worker's torch seed): different streams per worker and per epoch,
reproducible when the main process seeds torch (`torch.manual_seed`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError

Transform = Callable[[dict, np.random.Generator], dict]


def _worker_seed() -> int | None:
    """torch's seed of the current DataLoader worker (base seed of the epoch + worker id); None outside."""
    try:
        from torch.utils.data import get_worker_info
    except ImportError:  # pragma: no cover - torch is a medhub dependency
        return None
    info = get_worker_info()
    return None if info is None else int(info.seed)


class Compose:
    """Apply `transforms` in order; each is called as `transform(sample, rng)` and returns a new dict."""

    def __init__(self, transforms: Sequence[Transform], seed: int | None = None):
        for t in transforms:
            if not callable(t):
                raise InputError(f"transform {t!r} is not callable; expected transform(sample, rng) -> dict")
        self.transforms = list(transforms)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._rng_worker: int | None = None

    def _generator(self) -> np.random.Generator:
        worker = _worker_seed()
        if worker is not None and worker != self._rng_worker:
            self._rng = np.random.default_rng(np.random.SeedSequence([self.seed or 0, worker]))
            self._rng_worker = worker
        return self._rng

    def __call__(self, sample: dict, rng: np.random.Generator | None = None) -> dict:
        if not isinstance(sample, dict):
            raise InputError(f"sample is {type(sample).__name__}: expected a dict of arrays")
        rng = self._generator() if rng is None else rng
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def batch_transform(self) -> Callable[[dict], dict]:
        """The function for `Dataset.set_transform` / `with_transform` (see `as_batch_transform`)."""
        return as_batch_transform(self)


def _to_array(value):
    """PIL images and nested lists become arrays (RGB moves to channel-first); other values pass."""
    if hasattr(value, "getbands"):  # a PIL image, as a datasets Image feature decodes it
        array = np.asarray(value)
        return np.moveaxis(array, -1, 0) if array.ndim == 3 else array
    if isinstance(value, (list, tuple)) or isinstance(value, np.ndarray):
        return np.asarray(value)
    if hasattr(value, "numpy"):  # a torch tensor (format "torch")
        return value.numpy()
    return value


def as_batch_transform(compose: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """Batch dict {column: [row values]} -> augmented batch dict, row by row.

    Array-like columns (PIL images, lists, numpy, tensors) become numpy arrays before the transforms;
    other columns (ids, strings) pass through. Outputs are numpy arrays that the default DataLoader
    collate stacks into tensors.
    """

    def transform(batch: dict) -> dict:
        if not isinstance(batch, dict) or not batch:
            raise InputError(f"batch is {type(batch).__name__}: expected a non-empty dict of columns")
        lengths = {key: len(values) for key, values in batch.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"batch columns have different lengths {lengths}; expected equal lengths")
        rows = next(iter(lengths.values()))
        out: dict[str, list] = {}
        for i in range(rows):
            sample = compose({key: _to_array(values[i]) for key, values in batch.items()})
            for key, value in sample.items():
                out.setdefault(key, []).append(np.ascontiguousarray(value) if isinstance(value, np.ndarray) else value)
        return out

    return transform
