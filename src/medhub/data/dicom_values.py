"""Finding DICOM in a dataset's values: which columns may hold it (strings or bytes at any depth: structs in any
field order, lists of structs, `binary` / `large_binary`, `Json`), which values do (`{"path", "bytes"}` structs,
bytes that parse as DICOM, strings naming DICOM files), their headers read within medhub's limits, and the DICOM
UIDs inside strings. Shared by the push check (`sharing`) and `deidentify_dataset`."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
from datasets import Dataset, DatasetDict, Json, LargeList, List, Value

from ..errors import InputError
from ..io.dicom import read_dicom_header
from .dicom_feature import DICOM_STRUCT

DICOM_SUFFIXES = (".dcm", ".dicom")
BATCH_SIZE = 64
# A DICOM UID inside any string: 0, 1 or 2, then at least two more numeric components (checked: >= 10 chars).
UID_PATTERN = re.compile(r"(?<![\w.])[0-2](?:\.\d+){2,}(?!\w)")
MIN_UID_CHARS = 10
STANDARD_UID_ROOT = "1.2.840.10008."  # UIDs the standard defines (SOP classes, transfer syntaxes): not identifying


def is_dicom_struct(feature: Any) -> bool:
    """True for a column stored as `DICOM_STRUCT` ({"path": string, "bytes": binary}, in any field order)."""
    return isinstance(feature, dict) and feature == DICOM_STRUCT


def may_hold_dicom(feature: Any) -> bool:
    """Whether values of this feature can hold DICOM bytes or paths: strings or bytes at any depth."""
    if isinstance(feature, Value):
        return feature.dtype in ("string", "large_string", "binary", "large_binary")
    if isinstance(feature, dict):
        return any(may_hold_dicom(f) for f in feature.values())
    if isinstance(feature, (List, LargeList)):
        return may_hold_dicom(feature.feature)
    if isinstance(feature, list):  # the old list-of-one-feature notation
        return bool(feature) and may_hold_dicom(feature[0])
    return isinstance(feature, Json)  # Image, Audio, ClassLabel, numbers: never DICOM


def looks_like_dicom_path(value: Any) -> bool:
    """A string naming a `.dcm`/`.dicom` file, or an existing file with the 'DICM' preamble at byte 128."""
    if not isinstance(value, str) or not value or "\n" in value or len(value) > 4096:
        return False
    if value.lower().endswith(DICOM_SUFFIXES):
        return True
    try:
        path = Path(value)
        if not path.is_file():
            return False
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_file(value: Any) -> bool:
    """A string naming an existing DICOM file (`looks_like_dicom_path` and a file): a name of a file that is
    not there is just a string (it gets the UID check, and is remapped by `deidentify_dataset`)."""
    return looks_like_dicom_path(value) and Path(value).is_file()


def is_dicom_bytes(data: Any) -> bool:
    """Bytes with the 'DICM' preamble at byte 128, or a DICOM dataset without preamble (group 0002 or 0008
    first, little endian): what pydicom reads as DICOM."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < 8:
        return False
    head = bytes(data[:132])
    return head[128:132] == b"DICM" or head[:2] in (b"\x02\x00", b"\x08\x00")


def dicom_columns(dataset: Dataset) -> tuple[list[str], list[str]]:
    """(DICOM struct columns, other columns whose values can hold DICOM bytes or paths) of `dataset`."""
    structs = [name for name, feature in dataset.features.items() if is_dicom_struct(feature)]
    others = [name for name, feature in dataset.features.items()
              if name not in structs and may_hold_dicom(feature)]
    return structs, others


def raw_dataset(dataset: Dataset) -> Dataset:
    """`dataset` without its format or transform (e.g. `decode_dicom_columns`): the stored values."""
    return dataset.with_format(None)


def column_batches(dataset: Dataset, column: str):
    for batch in raw_dataset(dataset).select_columns([column]).iter(batch_size=BATCH_SIZE):
        yield batch[column]


def column_values(dataset: Dataset, column: str):
    for batch in column_batches(dataset, column):
        yield from batch


def splits_of(dataset_or_dict) -> dict[str | None, Dataset]:
    if isinstance(dataset_or_dict, DatasetDict):
        for name, split in dataset_or_dict.items():
            if not isinstance(split, Dataset):
                raise InputError(f"split {name!r} is a {type(split).__name__}; expected a map-style Dataset")
        return dict(dataset_or_dict)
    if isinstance(dataset_or_dict, Dataset):
        return {None: dataset_or_dict}
    raise InputError(f"got {type(dataset_or_dict).__name__}: expected a datasets.Dataset or DatasetDict "
                     "(a streaming IterableDataset cannot be checked without reading it: load it map-style)")


# -- finding the DICOM files inside values -------------------------------------------------------------
def struct_files(value: dict, where: str, strict: bool) -> list[tuple[str, bytes | None, str | None]]:
    """(source, bytes, path) of the DICOM file(s) one {"path", "bytes"} value stands for.

    strict (a DICOM struct column): the value must be DICOM; otherwise bytes that are not DICOM (an image)
    and paths that do not look like DICOM are not this check's business."""
    data, path = value.get("bytes"), value.get("path")
    if data is not None:
        return [(path or "<bytes>", bytes(data), None)] if strict or is_dicom_bytes(data) else []
    if not isinstance(path, str):
        if strict:
            raise InputError(f"{where}: DICOM value with neither 'path' nor 'bytes'")
        return []
    if Path(path).is_dir():
        return [(str(f), None, str(f)) for f in sorted(Path(path).rglob("*")) if looks_like_dicom_path(str(f))]
    if not (strict or looks_like_dicom_path(path)):
        return []
    if not Path(path).is_file():
        raise InputError(f"{where}: DICOM file {path!r} not found; it cannot be checked for identifying attributes")
    return [(path, None, path)]


def is_file_struct(value: Any) -> bool:
    return isinstance(value, dict) and "path" in value and "bytes" in value


def dicom_parts(value: Any, where: str, strict: bool = False) -> Iterator[tuple[str, str, bytes | None, str | None]]:
    """(where, source, bytes, path) of every DICOM file inside one stored value, at any depth."""
    if value is None:
        return
    if is_file_struct(value):
        yield from ((where, *f) for f in struct_files(value, where, strict))
        value = {k: v for k, v in value.items() if k not in ("path", "bytes")}
    if isinstance(value, dict):
        for key, item in value.items():
            yield from dicom_parts(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from dicom_parts(item, f"{where}[{i}]")
    elif is_dicom_bytes(value):
        yield where, "<bytes>", bytes(value), None
    elif is_dicom_file(value):
        yield where, value, None, value


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside one stored value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


def uids_in(text: str) -> list[str]:
    """The DICOM UIDs written inside `text` (not the standard's own UIDs, which identify no one)."""
    return [uid for uid in UID_PATTERN.findall(text)
            if len(uid) >= MIN_UID_CHARS and not uid.startswith(STANDARD_UID_ROOT)]


def header_uids(ds: pydicom.Dataset) -> set[str]:
    """Every UID value in a header (and its file meta), nested sequences included."""
    elements = list(ds.iterall()) + list(getattr(ds, "file_meta", pydicom.Dataset()))
    return {str(v).strip() for e in elements if e.VR == "UI" and e.value
            for v in (e.value if e.VM > 1 else [e.value])}


# -- scanning ------------------------------------------------------------------------------------------
def read_header(data: bytes | None, path: str | None, where: str) -> pydicom.Dataset:
    try:
        return read_dicom_header(io.BytesIO(data) if data is not None else Path(path), name=path or "<bytes>")
    except InputError as err:
        raise InputError(f"{where}: cannot read the DICOM header ({err}); expected a DICOM file, so it "
                         "cannot be checked for identifying attributes") from err


