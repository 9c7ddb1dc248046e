"""What every medhub loader shares: the skip report of lenient mode, and turning checked rows into datasets.

Loaders first list their examples as rows of *paths and labels* (cheap: nothing is decoded), checking each
row; then `to_dataset` hands the rows to `datasets`, whose features (`Image`, `Nifti`, ...) decode lazily on
access. Streaming is the same table as an `IterableDataset` cut into shards, so that torch DataLoader workers
and `.shuffle(buffer_size=..., seed=...)` split the work without reading anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset, DatasetDict, DatasetInfo, Features, IterableDatasetDict

from ..errors import InputError
from ..logging_utils import get_logger

logger = get_logger("data")

DEFAULT_MAX_SHARDS = 8


@dataclass
class SkipReport:
    """What a loader skipped. Strict mode (lenient=False) raises at the first problem instead.

    The count and the reasons end up in `dataset.info.description` and in a logged warning, so a lenient
    load never drops an example silently.
    """

    source: str
    lenient: bool = False
    skipped: list[str] = field(default_factory=list)

    def problem(self, message: str) -> None:
        """Raise InputError(message), or, in lenient mode, record it and go on."""
        if not self.lenient:
            raise InputError(message)
        self.skipped.append(message)

    def description(self, what: str) -> str:
        text = f"{what} (loaded by medhub.data from {self.source})."
        if self.skipped:
            text += f" Lenient mode skipped {len(self.skipped)} example(s): " + "; ".join(self.skipped)
        return text

    def log(self) -> None:
        if self.skipped:
            logger.warning("%s: lenient mode skipped %d example(s): %s", self.source, len(self.skipped),
                           "; ".join(self.skipped))


def to_dataset(rows: list[dict[str, Any]], features: Features, *, split: str, streaming: bool,
               report: SkipReport, what: str, num_shards: int | None = None):
    """A `Dataset` (or sharded `IterableDataset` when streaming) of `rows`, in the order given."""
    if not rows:
        raise InputError(f"{report.source}: no examples left for split {split!r}"
                         + (f" after skipping {len(report.skipped)}" if report.skipped else ""))
    report.log()
    columns = {name: [row[name] for row in rows] for name in features}
    info = DatasetInfo(description=report.description(what), features=features)
    dataset = Dataset.from_dict(columns, features=features, info=info, split=split)
    return as_streaming(dataset, num_shards) if streaming else dataset


def as_streaming(dataset: Dataset, num_shards: int | None = None):
    """`dataset` as an IterableDataset of `num_shards` shards (default: up to 8), its description kept."""
    description = dataset.info.description
    shards = num_shards or min(len(dataset), DEFAULT_MAX_SHARDS)
    iterable = dataset.to_iterable_dataset(num_shards=shards)
    iterable.info.description = description
    return iterable


def pick_split(builders: dict[str, Any], split: str | None, streaming: bool, source: str):
    """Build one split (`split` named) or all of them as a DatasetDict / IterableDatasetDict (split=None).

    builders: split name -> zero-argument function returning that split's dataset.
    """
    if split is None:
        built = {name: build() for name, build in builders.items()}
        return IterableDatasetDict(built) if streaming else DatasetDict(built)
    if split not in builders:
        raise InputError(f"{source}: no split {split!r}; this dataset has {list(builders)}")
    return builders[split]()
