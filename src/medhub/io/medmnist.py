"""MedMNIST `.npz` reading: one split's images and labels, with the file's own key names checked."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError

SPLITS = ("train", "val", "test")


def _check_declared_sizes(path: Path) -> None:
    """Refuse a member whose .npy header declares more data than the member holds (before allocating it)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(fh, max_header_size=10000)
                header_size = fh.tell()
            if dtype.hasobject:
                raise InputError(f"{path}: {info.filename} holds Python objects (pickle); expected plain arrays")
            needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if needed != info.file_size - header_size:
                raise InputError(f"{path}: {info.filename} declares shape {shape} ({needed} bytes) but holds "
                                 f"{info.file_size - header_size} bytes; truncated or corrupt")


def read_medmnist(npz_path: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Return `(images, labels)` of `split` from a MedMNIST v2 `.npz` file.

    images: uint8 (N, H, W) for greyscale datasets or (N, H, W, 3) for colour ones, as stored.
    labels: (N, k) integers (k = 1 for multi-class datasets, k = number of labels for multi-label ones).
    The file is opened with allow_pickle=False: MedMNIST files hold plain arrays only.
    """
    path = Path(npz_path)
    if split not in SPLITS:
        raise InputError(f"{path}: split {split!r} is not one of {list(SPLITS)}")
    if not path.is_file():
        raise InputError(f"{path}: no such MedMNIST .npz file")
    try:
        _check_declared_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            keys = sorted(data.files)
            wanted = (f"{split}_images", f"{split}_labels")
            missing = [k for k in wanted if k not in keys]
            if missing:
                raise InputError(f"{path}: missing key(s) {missing} for split {split!r}; the file has {keys}")
            images, labels = data[wanted[0]], data[wanted[1]]
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile/zlib/numpy header parsing raise many types on corrupt files
        reason = " ".join(str(err).split())[:300]
        raise InputError(f"{path}: not a readable .npz file ({type(err).__name__}: {reason})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise InputError(f"{path}: {split}_images is {images.dtype} {images.shape}; expected uint8 (N, H, W[, C])")
    if len(images) == 0:
        raise InputError(f"{path}: {split}_images is empty; expected at least one image")
    if labels.ndim == 0 or len(labels) != len(images):
        raise InputError(f"{path}: {split}_labels has shape {labels.shape}; expected ({len(images)}, k)")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: {split}_labels is {labels.dtype}; expected integer class labels")
    labels = labels.reshape(len(labels), -1) if labels.ndim == 1 else labels
    if labels.ndim != 2 or len(labels) != len(images):
        raise InputError(f"{path}: {split}_labels has shape {labels.shape}; expected ({len(images)}, k)")
    return images, labels


__all__ = ["read_medmnist"]
