"""`medhub.data.load`: one entry point for named datasets, local folders and Hub dataset repos.

Resolution order for `name_or_path`:
1. a named dataset (`NAMED_DATASETS`: pneumoniamnist, isbi2012, brats2015-examples, chestxray14,
   dsb2018-nuclei), read from
   `data_dir` or medhub's shared data folder;
2. a local folder in a medical layout medhub checks itself (see `folders.py`: class folders, images/ + masks/,
   NIfTI subject folders, DICOM series or files), or a `.npz` file in the MedMNIST v2 layout (its train / val /
   test arrays as the splits train / validation / test);
3. anything else (a Hub repo id, or a local folder of parquet/csv/json files or an imagefolder with
   metadata) goes to `datasets.load_dataset`, the real client; a repo that cannot be reached is a HubError.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import datasets

from ..errors import HubError, InputError
from ._table import pick_split
from .folders import LAYOUTS, detect_layout
from .named import NAMED_DATASETS, dataset_folder, medmnist_file


def load(name_or_path: str | Path, split: str | None = None, *, streaming: bool = False, lenient: bool = False,
         data_dir: str | Path | None = None, num_shards: int | None = None, **options):
    """Load a dataset as `datasets.Dataset` (`IterableDataset` when streaming), or a DatasetDict of every
    split when `split` is None.

    lenient: skip bad examples (missing files, unpaired masks, disagreeing geometry), count them in
        `dataset.info.description` and log them, instead of raising InputError at the first. Applies to
        the named datasets and medhub's folder layouts; what `datasets.load_dataset` reads it checks itself.
    num_shards: shards of a streaming dataset (default up to 8): torch DataLoader workers split the shards.
    options: the named dataset's or layout's own options, e.g. `val_slices=4` for isbi2012,
        `val_fraction=0.1, seed=0` for chestxray14, `decode=False` for DICOM.
    Local folders in medhub's layouts have one split, "train".
    """
    name = str(name_or_path)
    common = {"streaming": streaming, "lenient": lenient, "num_shards": num_shards}
    if name in NAMED_DATASETS:
        builders = NAMED_DATASETS[name](dataset_folder(name, data_dir), **common, **options)
        return pick_split(builders, split, streaming, name)
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix.lower() == ".npz":
        return pick_split(medmnist_file(path, **common, **options), split, streaming, str(path))
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path}: expected a folder (or a named dataset {sorted(NAMED_DATASETS)})")
        layout = detect_layout(path)
        if layout is not None:
            builders = {"train": partial(LAYOUTS[layout], path, split="train", **common, **options)}
            return pick_split(builders, split, streaming, str(path))
    return load_with_datasets(name, split, streaming=streaming, **options)


def load_with_datasets(path_or_repo: str, split: str | None, *, streaming: bool, **options):
    """`datasets.load_dataset`, with its failures turned into medhub errors that say what was tried."""
    try:
        return datasets.load_dataset(path_or_repo, split=split, streaming=streaming, **options)
    except ConnectionError as err:
        raise HubError(f"{path_or_repo}: not a named medhub dataset {sorted(NAMED_DATASETS)} nor a local folder, "
                       f"and the Hub could not be reached for it (offline or unreachable endpoint: {err})") from err
    except (datasets.exceptions.DatasetNotFoundError, FileNotFoundError) as err:
        raise HubError(f"{path_or_repo}: not a named medhub dataset {sorted(NAMED_DATASETS)}, a local folder, "
                       f"or a dataset repo on the Hub ({type(err).__name__}: {err})") from err
    except ValueError as err:  # unknown split, no data files in a local folder, ...
        raise InputError(f"{path_or_repo}: datasets.load_dataset refused it ({err})") from err


__all__ = ["load", "load_with_datasets"]
