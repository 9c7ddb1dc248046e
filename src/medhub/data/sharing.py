"""Sharing a dataset safely: de-identify before anything leaves the hospital, and refuse to push otherwise.

`push_dataset(dataset, repo_id)` pushes a `datasets.Dataset` / `DatasetDict` with the real `datasets` client
(`push_to_hub`, Parquet files on the Hub), but first scans every DICOM in it:

- DICOM columns (the `{"path", "bytes"}` struct of `dicom_feature.DICOM_STRUCT`): each value's header is read
  from its bytes, or from its file (a series folder: every file in it), with `stop_before_pixels=True`;
- string columns whose values look like DICOM paths (a `.dcm`/`.dicom` name, or an existing file with the
  'DICM' preamble): each such file's header.

Each header goes through `medhub.io.deidentify.find_identifying_attributes` (PS3.15 Annex E, Basic Profile).
Anything found makes the push an `IdentifyingDataError` (an `InputError`) that names the rows, files and
attributes; nothing is uploaded. `allow_identifying_data=True`, passed explicitly, skips the check with a
logged warning (for data whose sharing is covered otherwise, e.g. a private repo under an agreement).

`deidentify_dataset(dataset)` returns the dataset with every DICOM column holding de-identified *bytes*
(`medhub.io.deidentify.deidentify`, UIDs remapped through ONE `uid_map` for the whole dataset, so that a
study or series stays linked across rows and splits). Each value's path becomes `<new SOPInstanceUID>.dcm`,
because original file names are often the original SOPInstanceUID or carry a name. Pixels are never
cleaned (see `medhub.io.deidentify` on burned-in annotation).

A DICOM value held only as a path is embedded (its bytes read, its path cut to the file name) before the
push, as `datasets` does for its own `Image` files, so the pushed Parquet files are self-contained; a series
folder cannot be one value's bytes and is refused.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from datasets import Dataset, DatasetDict, Features, Value

from ..errors import HubError, InputError
from ..hub import endpoint
from ..io.deidentify import deidentify, find_identifying_attributes
from ..logging_utils import get_logger
from .dicom_feature import DICOM_STRUCT

logger = get_logger("data.sharing")

DICOM_SUFFIXES = (".dcm", ".dicom")
BATCH_SIZE = 64
MAX_LISTED = 20  # rows named in an error message; the rest are counted


class IdentifyingDataError(InputError):
    """A dataset about to be shared still holds identifying DICOM attributes (`findings` lists them)."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True)
class Finding:
    """What still identifies a patient in one DICOM file of one row."""

    split: str | None  # the DatasetDict key; None for a plain Dataset
    column: str
    row: int
    source: str  # the file path, or "<bytes>" when the value holds bytes without a path
    attributes: tuple[str, ...]  # find_identifying_attributes' entries, e.g. "(0010,0010) PatientName: ..."

    def describe(self) -> str:
        where = f"{self.split}/" if self.split is not None else ""
        return f"{where}{self.column}[row {self.row}] {self.source}: " + "; ".join(self.attributes)


# -- which columns hold DICOM --------------------------------------------------------------------------
def is_dicom_struct(feature: Any) -> bool:
    """True for a column stored as `DICOM_STRUCT` ({"path": string, "bytes": binary})."""
    return isinstance(feature, dict) and feature == DICOM_STRUCT


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


def dicom_columns(dataset: Dataset) -> tuple[list[str], list[str]]:
    """(DICOM struct columns, string columns with at least one DICOM-looking path) of `dataset`."""
    structs = [name for name, feature in dataset.features.items() if is_dicom_struct(feature)]
    strings = []
    for name, feature in dataset.features.items():
        if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            if any(looks_like_dicom_path(v) for batch in _column_batches(dataset, name) for v in batch):
                strings.append(name)
    return structs, strings


def _raw(dataset: Dataset) -> Dataset:
    """`dataset` without its format or transform (e.g. `decode_dicom_columns`): the stored values."""
    return dataset.with_format(None)


def _column_batches(dataset: Dataset, column: str):
    for batch in _raw(dataset).select_columns([column]).iter(batch_size=BATCH_SIZE):
        yield batch[column]


def _splits(dataset_or_dict) -> dict[str | None, Dataset]:
    if isinstance(dataset_or_dict, DatasetDict):
        for name, split in dataset_or_dict.items():
            if not isinstance(split, Dataset):
                raise InputError(f"split {name!r} is a {type(split).__name__}; expected a map-style Dataset")
        return dict(dataset_or_dict)
    if isinstance(dataset_or_dict, Dataset):
        return {None: dataset_or_dict}
    raise InputError(f"got {type(dataset_or_dict).__name__}: expected a datasets.Dataset or DatasetDict "
                     "(a streaming IterableDataset cannot be checked without reading it: load it map-style)")


# -- scanning ------------------------------------------------------------------------------------------
def _read_header(data: bytes | None, path: str | None, where: str) -> pydicom.Dataset:
    try:
        if data is not None:
            return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as err:
        raise InputError(f"{where}: cannot read the DICOM header ({err}); expected a DICOM file, so it "
                         "cannot be checked for identifying attributes") from err


def _value_files(value: dict | None, where: str) -> list[tuple[str, bytes | None, str | None]]:
    """(source, bytes, path) of every DICOM file one stored value stands for."""
    if value is None:
        return []
    data, path = value.get("bytes"), value.get("path")
    if data is not None:
        return [(path or "<bytes>", data, None)]
    if path is None:
        raise InputError(f"{where}: DICOM value with neither 'path' nor 'bytes'")
    if Path(path).is_dir():
        return [(str(f), None, str(f)) for f in sorted(Path(path).rglob("*")) if looks_like_dicom_path(str(f))]
    if not Path(path).is_file():
        raise InputError(f"{where}: DICOM file {path!r} not found; it cannot be checked for identifying attributes")
    return [(path, None, path)]


def find_identifying_data(dataset_or_dict, columns: list[str] | None = None) -> list[Finding]:
    """Every DICOM file of `dataset_or_dict` that still identifies a patient (empty when all are clean).

    columns: the columns to scan; default every DICOM struct column and every string column holding DICOM
    paths. Only headers are read (`stop_before_pixels=True`).
    """
    findings: list[Finding] = []
    for split, dataset in _splits(dataset_or_dict).items():
        structs, strings = dicom_columns(dataset)
        names = structs + strings if columns is None else list(columns)
        missing = [c for c in names if c not in dataset.column_names]
        if missing:
            raise InputError(f"no column(s) {missing} in {split or 'the dataset'}; it has {dataset.column_names}")
        for column in names:
            row = 0
            for batch in _column_batches(dataset, column):
                for value in batch:
                    where = f"{split + '/' if split else ''}{column}[row {row}]"
                    if column in structs or isinstance(value, dict):
                        files = _value_files(value, where)
                    else:
                        files = [(value, None, value)] if looks_like_dicom_path(value) else []
                    for source, data, path in files:
                        found = find_identifying_attributes(_read_header(data, path, f"{where} {source}"))
                        if found:
                            findings.append(Finding(split, column, row, source, tuple(found)))
                    row += 1
    return findings


def check_deidentified(dataset_or_dict, columns: list[str] | None = None) -> None:
    """Raise `IdentifyingDataError` naming every row, file and attribute that still identifies a patient."""
    findings = find_identifying_data(dataset_or_dict, columns)
    if not findings:
        return
    listed = "\n".join(f"  {f.describe()}" for f in findings[:MAX_LISTED])
    more = f"\n  ... and {len(findings) - MAX_LISTED} more" if len(findings) > MAX_LISTED else ""
    raise IdentifyingDataError(
        f"{len(findings)} DICOM file(s) still hold identifying attributes (PS3.15 Basic Profile):\n{listed}{more}\n"
        "Expected de-identified DICOM: use medhub.data.sharing.deidentify_dataset(dataset) (or "
        "medhub.io.deidentify.deidentify per file) first, or pass allow_identifying_data=True to push anyway.",
        findings,
    )


# -- de-identification ---------------------------------------------------------------------------------
def _deidentified_value(value, row: int, where: str, uid_map: dict[str, str], salt, keep_private: bool, burned_in: str):
    if value is None:
        return None
    if isinstance(value, str):
        value = {"path": value, "bytes": None}
    files = _value_files(value, where)
    if value.get("bytes") is None and Path(value["path"]).is_dir():
        raise InputError(f"{where}: {value['path']} is a series folder; one value can hold one file's bytes, "
                         "expected one DICOM file per row (load the series files as a dicom-files dataset)")
    source, data, path = files[0]
    try:
        ds = pydicom.dcmread(io.BytesIO(data) if data is not None else path)
    except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as err:
        raise InputError(f"{where} {source}: not a readable DICOM file ({err})") from err
    try:
        clean = deidentify(ds, uid_map=uid_map, salt=salt, keep_private=keep_private, burned_in=burned_in)
    except InputError as err:
        raise InputError(f"{where} {source}: {err}") from err
    out = io.BytesIO()
    clean.save_as(out, enforce_file_format=getattr(clean, "file_meta", None) is not None)
    name = str(clean.get("SOPInstanceUID", "") or "").strip() or f"row-{row}"
    return {"path": f"{name}.dcm", "bytes": out.getvalue()}


def deidentify_dataset(dataset, columns: list[str] | None = None, salt: str | None = None,
                       uid_map: dict[str, str] | None = None, *, keep_private: bool = False,
                       burned_in: str = "refuse"):
    """A new Dataset / DatasetDict whose DICOM columns hold de-identified bytes (the input is not changed).

    columns: default every DICOM struct column and every string column of DICOM paths (which becomes a
        DICOM struct column, since the de-identified file has to travel as bytes).
    salt, keep_private, burned_in: as `medhub.io.deidentify.deidentify` (salt None: a random per-process salt).
    uid_map: old UID -> new UID, shared by every row and split so that UIDs stay consistent; filled in place
        when given (keep it, privately, to re-link the data later).
    The format (e.g. `decode_dicom_columns`' transform) is kept; other columns are unchanged.
    """
    uid_map = {} if uid_map is None else uid_map
    out = {}
    for split, data in _splits(dataset).items():
        structs, strings = dicom_columns(data)
        names = structs + strings if columns is None else list(columns)
        bad = [c for c in names if c not in structs and c not in strings]
        if bad:
            raise InputError(f"column(s) {bad} of {split or 'the dataset'} hold no DICOM; DICOM columns: "
                             f"{structs + strings}")
        features = Features({**data.features, **{c: dict(DICOM_STRUCT) for c in names}})
        prefix = f"{split}/" if split else ""

        def clean(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            return {c: [_deidentified_value(v, i, f"{prefix}{c}[row {i}]", uid_map, salt, keep_private, burned_in)
                        for v, i in zip(batch[c], indices)] for c in names}

        result = _raw(data).map(clean, batched=True, batch_size=BATCH_SIZE, with_indices=True, features=features,
                                load_from_cache_file=False, desc="De-identifying DICOM")
        fmt = data.format
        out[split] = result.with_format(fmt["type"], columns=fmt["columns"],
                                        output_all_columns=fmt["output_all_columns"], **fmt["format_kwargs"])
    return out[None] if None in out else DatasetDict(out)


# -- pushing -------------------------------------------------------------------------------------------
def _embed_value(value, where: str):
    if value is None or value.get("bytes") is not None:
        return value
    path = value.get("path")
    if path is None or not Path(path).is_file():
        kind = "a series folder (expected one DICOM file per row)" if path and Path(path).is_dir() else "not a file"
        raise InputError(f"{where}: cannot embed DICOM {path!r}: {kind}")
    return {"path": Path(path).name, "bytes": Path(path).read_bytes()}


def embed_dicom_files(dataset: Dataset) -> Dataset:
    """`dataset` with every path-only DICOM value's file read into its bytes (path cut to the file name)."""
    structs = [c for c, f in dataset.features.items() if is_dicom_struct(f)]
    needs = [c for c in structs if any(v is not None and v.get("bytes") is None
                                       for batch in _column_batches(dataset, c) for v in batch)]
    if not needs:
        return dataset

    def embed(batch, indices):
        return {c: [_embed_value(v, f"{c}[row {i}]") for v, i in zip(batch[c], indices)] for c in needs}

    return _raw(dataset).map(embed, batched=True, batch_size=BATCH_SIZE, with_indices=True,
                             features=dataset.features, load_from_cache_file=False, desc="Embedding DICOM files")


def push_dataset(dataset_or_dict, repo_id: str, *, allow_identifying_data: bool = False, private: bool | None = None,
                 token: str | bool | None = None, commit_message: str | None = None, revision: str | None = None):
    """Push a Dataset / DatasetDict to the Hub (`push_to_hub`) after checking that its DICOM is de-identified.

    Refuses with `IdentifyingDataError` (nothing is uploaded) when any DICOM file still identifies a patient
    (see the module docstring), unless `allow_identifying_data=True` is passed explicitly. Path-only DICOM
    values are embedded first so the pushed data are self-contained. Returns the client's `CommitInfo`.
    """
    if not isinstance(allow_identifying_data, bool):
        raise InputError(f"allow_identifying_data={allow_identifying_data!r}: expected True or False")
    splits = _splits(dataset_or_dict)
    if allow_identifying_data:
        logger.warning("pushing the dataset to %s WITHOUT the de-identification check (allow_identifying_data="
                       "True): any patient data in its DICOM headers will be shared", repo_id)
    else:
        check_deidentified(dataset_or_dict)
    embedded = {name: embed_dicom_files(split) for name, split in splits.items()}
    to_push = embedded[None] if None in embedded else DatasetDict(embedded)
    from huggingface_hub import errors as hf_errors

    try:
        info = to_push.push_to_hub(repo_id, private=private, token=token, commit_message=commit_message,
                                   revision=revision)
    except hf_errors.HfHubHTTPError as err:
        raise HubError(f"push of the dataset to {repo_id} at {endpoint()} failed: {str(err)[:400]}") from err
    logger.info("pushed dataset to %s (%s)", repo_id, getattr(info, "oid", None) or info)
    return info


__all__ = ["Finding", "IdentifyingDataError", "check_deidentified", "deidentify_dataset", "dicom_columns",
           "embed_dicom_files", "find_identifying_data", "push_dataset"]
