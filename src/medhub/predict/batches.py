"""Many inputs through one model: decode and preprocess in a background thread while the model runs, and group
images of one processed shape into batches (`--batch-size` images per forward pass for classifiers)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

Item = TypeVar("Item")

# Default images per forward pass for classifiers: large enough to amortise the per-call overhead of a small
# model, small enough that a batch of 224x224 DenseNet-121 activations stays within a laptop's memory.
DEFAULT_CLASSIFIER_BATCH = 16


def prefetched(load: Callable[[Item], Any], items: Iterable[Item], depth: int = 32) -> Iterator[tuple[Item, Any]]:
    """(item, load(item)) in order, loaded up to `depth` items ahead by a background thread; an exception raised
    by `load` is yielded in place of its result (one unreadable file must not stop the others)."""
    def guarded(item: Item) -> Any:
        try:
            return load(item)
        except Exception as err:  # noqa: BLE001 - handed to the caller, which reports it per input
            return err

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medhub-load") as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(guarded, item)))
            if len(pending) > depth:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def same_shape_batches(loaded: Iterable[tuple[Item, Any]], batch_size: int,
                       shape: Callable[[Any], tuple]) -> Iterator[list[tuple[Item, Any]]]:
    """Batches of up to `batch_size` (item, value) pairs whose `shape(value)` agree, each yielded once full (the
    rest at the end); an exception value comes alone so that the caller reports it."""
    groups: dict[tuple, list[tuple[Item, Any]]] = {}
    for item, value in loaded:
        if isinstance(value, Exception):
            yield [(item, value)]
            continue
        group = groups.setdefault(tuple(shape(value)), [])
        group.append((item, value))
        if len(group) >= batch_size:
            yield groups.pop(tuple(shape(value)))
    yield from (group for group in groups.values() if group)


__all__ = ["DEFAULT_CLASSIFIER_BATCH", "prefetched", "same_shape_batches"]
