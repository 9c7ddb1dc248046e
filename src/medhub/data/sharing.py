"""Sharing a dataset safely: de-identify before anything leaves the hospital, and refuse to push otherwise.

`push_dataset(dataset, repo_id)` pushes a `datasets.Dataset` / `DatasetDict` with the real `datasets` client
(`push_to_hub`, Parquet files on the Hub), but first scans every column whose values can hold DICOM (every
column of strings or bytes, at any depth: structs in any field order, lists of structs, `binary` /
`large_binary` columns, `Json`), value by value:

- `{"path", "bytes"}` structs (`dicom_feature.DICOM_STRUCT`, or any struct with those two fields): the bytes
  when they hold DICOM, else the file (a series folder: every DICOM file in it);
- bytes that parse as DICOM (the 'DICM' preamble at byte 128, or a dataset starting with group 0002/0008);
- strings naming existing DICOM files (a `.dcm`/`.dicom` name, or a file with the 'DICM' preamble).

Each header (read with `stop_before_pixels=True`, through `medhub.io.dicom.read_dicom_header`, which bounds a
deflated file's inflated size) goes through `medhub.io.deidentify.find_identifying_attributes` (PS3.15 Annex
E, Basic Profile). In a split holding DICOM, every string (ids, file and folder names) is also searched for
DICOM UIDs: a UID that none of the split's headers holds (e.g. the original SOPInstanceUID kept as a file stem
in an `id` column) is identifying too. Anything found makes the push an `IdentifyingDataError` (an
`InputError`) naming the rows, columns, files and attributes; nothing is uploaded.
`allow_identifying_data=True`, passed explicitly, skips the check with a logged warning (for data whose
sharing is covered otherwise, e.g. a private repo under an agreement).

`deidentify_dataset(dataset)` returns the dataset with every DICOM value de-identified
(`medhub.io.deidentify.deidentify`, UIDs remapped through ONE `uid_map` for the whole dataset, so that a study
or series stays linked across rows and splits): bytes stay bytes, `{"path", "bytes"}` structs and columns of
DICOM paths become `{"path": "<new SOPInstanceUID>.dcm", "bytes": <de-identified file>}`, because original file
names are often the original SOPInstanceUID or carry a name. Every other string derived from a file's path or
header is remapped consistently: the file's stem, name or path becomes the new stem or name, a DICOM UID becomes
its new UID (`uid_map`), and a value equal to the file's PatientID, OtherPatientIDs, AccessionNumber, StudyID or
PatientName, or to one of the file's folder names that holds a digit (a folder named after a patient), becomes a
salted pseudonym `anon-<16 hex>` (the same value always gets the same pseudonym). Pixels are never cleaned
(see `medhub.io.deidentify` on burned-in annotation).

A DICOM value held only as a path is embedded (its bytes read, its path cut to the file name) before the
push, as `datasets` does for its own `Image` files, so the pushed Parquet files are self-contained; a series
folder cannot be one value's bytes and is refused.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
from datasets import Dataset, DatasetDict, Features, Json, LargeList, List, Value

from ..errors import HubError, InputError
from ..hub import endpoint
from ..io.deidentify import _PROCESS_SALT, deidentify, find_identifying_attributes, save
from ..io.dicom import dcmread_bounded, read_dicom_header
from ..logging_utils import get_logger
from .dicom_feature import DICOM_STRUCT

logger = get_logger("data.sharing")

DICOM_SUFFIXES = (".dcm", ".dicom")
BATCH_SIZE = 64
MAX_LISTED = 20  # rows named in an error message; the rest are counted
# A DICOM UID inside any string: 0, 1 or 2, then at least two more numeric components (checked: >= 10 chars).
UID_PATTERN = re.compile(r"(?<![\w.])[0-2](?:\.\d+){2,}(?!\w)")
MIN_UID_CHARS = 10
STANDARD_UID_ROOT = "1.2.840.10008."  # UIDs the standard defines (SOP classes, transfer syntaxes): not identifying
HEADER_IDENTIFIERS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "PatientName")
FOLDER_LEVELS = 3  # folders above a file whose names (holding a digit) are pseudonymised where they appear


class IdentifyingDataError(InputError):
    """A dataset about to be shared still holds identifying DICOM attributes (`findings` lists them)."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


@dataclass(frozen=True)
class Finding:
    """What still identifies a patient in one DICOM file (or one string) of one row."""

    split: str | None  # the DatasetDict key; None for a plain Dataset
    column: str  # the column, with the place inside it for nested values: "scans[1]", "meta.file"
    row: int
    source: str  # the file path, "<bytes>" when the value holds bytes without a path, or the string
    attributes: tuple[str, ...]  # find_identifying_attributes' entries, e.g. "(0010,0010) PatientName: ..."

    def describe(self) -> str:
        where = f"{self.split}/" if self.split is not None else ""
        return f"{where}{self.column}[row {self.row}] {self.source}: " + "; ".join(self.attributes)


# -- which values hold DICOM ---------------------------------------------------------------------------
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


def _raw(dataset: Dataset) -> Dataset:
    """`dataset` without its format or transform (e.g. `decode_dicom_columns`): the stored values."""
    return dataset.with_format(None)


def _column_batches(dataset: Dataset, column: str):
    for batch in _raw(dataset).select_columns([column]).iter(batch_size=BATCH_SIZE):
        yield batch[column]


def _column_values(dataset: Dataset, column: str):
    for batch in _column_batches(dataset, column):
        yield from batch


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


# -- finding the DICOM files inside values -------------------------------------------------------------
def _struct_files(value: dict, where: str, strict: bool) -> list[tuple[str, bytes | None, str | None]]:
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


def _is_file_struct(value: Any) -> bool:
    return isinstance(value, dict) and "path" in value and "bytes" in value


def dicom_parts(value: Any, where: str, strict: bool = False) -> Iterator[tuple[str, str, bytes | None, str | None]]:
    """(where, source, bytes, path) of every DICOM file inside one stored value, at any depth."""
    if value is None:
        return
    if _is_file_struct(value):
        yield from ((where, *f) for f in _struct_files(value, where, strict))
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


def _strings(value: Any) -> Iterator[str]:
    """Every string inside one stored value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


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
def _read_header(data: bytes | None, path: str | None, where: str) -> pydicom.Dataset:
    try:
        return read_dicom_header(io.BytesIO(data) if data is not None else Path(path), name=path or "<bytes>")
    except InputError as err:
        raise InputError(f"{where}: cannot read the DICOM header ({err}); expected a DICOM file, so it "
                         "cannot be checked for identifying attributes") from err


def find_identifying_data(dataset_or_dict, columns: list[str] | None = None) -> list[Finding]:
    """Every DICOM file (and every string holding a foreign UID) of `dataset_or_dict` that still identifies a
    patient (empty when all are clean).

    columns: the columns to scan; default every column whose values can hold DICOM bytes, paths or strings
    (see the module docstring). Only headers are read (`stop_before_pixels=True`).
    """
    findings: list[Finding] = []
    for split, dataset in _splits(dataset_or_dict).items():
        structs, others = dicom_columns(dataset)
        names = structs + others if columns is None else list(columns)
        missing = [c for c in names if c not in dataset.column_names]
        if missing:
            raise InputError(f"no column(s) {missing} in {split or 'the dataset'}; it has {dataset.column_names}")
        known_uids: set[str] = set()
        written_uids: list[tuple[str, int, str, str]] = []  # (column, row, string, uid)
        for column in names:
            for row, value in enumerate(_column_values(dataset, column)):
                prefix = f"{split + '/' if split else ''}{column}[row {row}]"
                for where, source, data, path in dicom_parts(value, column, strict=column in structs):
                    header = _read_header(data, path, f"{prefix} {source}")
                    known_uids |= header_uids(header)
                    found = find_identifying_attributes(header)
                    if found:
                        findings.append(Finding(split, where, row, source, tuple(found)))
                written_uids += [(column, row, text, uid) for text in _strings(value) for uid in uids_in(text)]
        if known_uids:  # a split holding DICOM: a UID none of its files holds is an original one
            findings += [Finding(split, column, row, text, (f"{uid}: a DICOM UID that none of the files holds (an "
                                                            "original UID kept in an id, file or folder name?)",))
                         for column, row, text, uid in written_uids if uid not in known_uids]
    return findings


def check_deidentified(dataset_or_dict, columns: list[str] | None = None) -> None:
    """Raise `IdentifyingDataError` naming every row, file and attribute that still identifies a patient."""
    findings = find_identifying_data(dataset_or_dict, columns)
    if not findings:
        return
    listed = "\n".join(f"  {f.describe()}" for f in findings[:MAX_LISTED])
    more = f"\n  ... and {len(findings) - MAX_LISTED} more" if len(findings) > MAX_LISTED else ""
    raise IdentifyingDataError(
        f"{len(findings)} value(s) still hold identifying data (PS3.15 Basic Profile):\n{listed}{more}\n"
        "Expected de-identified DICOM: use medhub.data.sharing.deidentify_dataset(dataset) (or "
        "medhub.io.deidentify.deidentify per file) first, or pass allow_identifying_data=True to push anyway.",
        findings,
    )


# -- de-identification ---------------------------------------------------------------------------------
def pseudonym(value: str, uid_map: dict[str, str], salt: str) -> str:
    """A salted pseudonym `anon-<16 hex>` for an id or folder name, stored in (and taken from) `uid_map`."""
    if value not in uid_map:
        uid_map[value] = "anon-" + hashlib.sha256(f"{salt}\x00name\x00{value}".encode()).hexdigest()[:16]
    return uid_map[value]


class _Cleaner:
    """De-identifies the DICOM inside one row's values and remembers what its paths and headers were called."""

    def __init__(self, uid_map: dict[str, str], salt: str | None, keep_private: bool, burned_in: str):
        self.uid_map, self.salt = uid_map, _PROCESS_SALT if salt is None else str(salt)
        self.keep_private, self.burned_in = keep_private, burned_in
        self.renames: dict[str, str] = {}  # this row's original path-derived strings -> their new form

    def file(self, source: str, data: bytes | None, path: str | None, where: str, row: int) -> dict[str, Any]:
        """{"path": "<new SOPInstanceUID>.dcm", "bytes": de-identified file} for one DICOM file."""
        try:
            ds = dcmread_bounded(io.BytesIO(data) if data is not None else Path(path), source,
                                 force=data is not None and bytes(data[128:132]) != b"DICM")
            clean = deidentify(ds, uid_map=self.uid_map, salt=self.salt, keep_private=self.keep_private,
                               burned_in=self.burned_in)
        except InputError as err:  # over the size limits, burned-in annotation
            raise InputError(f"{where} {source}: {err}") from err
        except (pydicom.errors.InvalidDicomError, OSError, EOFError, ValueError) as err:
            raise InputError(f"{where} {source}: not a readable DICOM file ({err})") from err
        out = io.BytesIO()
        save(clean, out)
        new_uid = str(clean.get("SOPInstanceUID", "") or "").strip() or f"row-{row}"
        self._remember(source, ds, new_uid)
        return {"path": f"{new_uid}.dcm", "bytes": out.getvalue()}

    def _remember(self, source: str, ds: pydicom.Dataset, new_uid: str) -> None:
        if source != "<bytes>":
            original = Path(source)
            self.renames.update({source: f"{new_uid}.dcm", original.name: f"{new_uid}.dcm", original.stem: new_uid})
            for folder in list(original.parents)[:FOLDER_LEVELS]:
                if any(ch.isdigit() for ch in folder.name):
                    self.renames.setdefault(folder.name, self.uid_map.get(folder.name)
                                            or pseudonym(folder.name, self.uid_map, self.salt))
        for keyword in HEADER_IDENTIFIERS:
            values = ds.get(keyword)
            for value in (values if isinstance(values, pydicom.multival.MultiValue) else [values]):
                if value is not None and str(value).strip():
                    self.renames.setdefault(str(value).strip(), pseudonym(str(value).strip(), self.uid_map, self.salt))

    def value(self, value: Any, where: str, row: int, strict: bool = False, top: bool = False) -> Any:
        """`value` with every DICOM file in it de-identified (bytes stay bytes; structs and top-level paths
        become {"path", "bytes"} structs)."""
        if value is None:
            return None
        if _is_file_struct(value):
            files = _struct_files(value, where, strict)
            if files and value.get("bytes") is None and Path(value["path"]).is_dir():
                raise InputError(f"{where}: {value['path']} is a series folder; one value can hold one file's bytes, "
                                 "expected one DICOM file per row (load the series files as a dicom-files dataset)")
            rest = {k: self.value(v, f"{where}.{k}", row) for k, v in value.items() if k not in ("path", "bytes")}
            return {**value, **rest, **(self.file(*files[0], where, row) if files else {})}
        if isinstance(value, dict):
            return {k: self.value(v, f"{where}.{k}", row) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v, f"{where}[{i}]", row) for i, v in enumerate(value)]
        if is_dicom_bytes(value):
            return self.file("<bytes>", bytes(value), None, where, row)["bytes"]
        if is_dicom_file(value):
            if not top:
                raise InputError(f"{where}: {value!r} is a DICOM path inside a list or struct; a de-identified file "
                                 "travels as bytes: store it as a {'path', 'bytes'} value (DICOM_STRUCT) instead")
            return self.file(value, None, value, where, row)
        return value

    def rewrite(self, value: Any) -> Any:
        """`value` with this row's path- and header-derived strings (and every known UID) replaced."""
        if isinstance(value, str):
            return rewrite_text(value, self.renames, self.uid_map)
        if isinstance(value, dict):
            return {k: self.rewrite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.rewrite(v) for v in value]
        return value


def rewrite_text(text: str, renames: dict[str, str], uid_map: dict[str, str]) -> str:
    """`text` with whole-value renames applied, then the renamed names and every UID of `uid_map` inside it."""
    if text in renames:
        return renames[text]
    for old in sorted((k for k in renames if len(k) >= 4 and k in text), key=len, reverse=True):
        text = text.replace(old, renames[old])
    return UID_PATTERN.sub(lambda m: uid_map.get(m.group(0), m.group(0)), text)


def deidentify_dataset(dataset, columns: list[str] | None = None, salt: str | None = None,
                       uid_map: dict[str, str] | None = None, *, keep_private: bool = False,
                       burned_in: str = "refuse"):
    """A new Dataset / DatasetDict whose DICOM is de-identified and whose path- or UID-derived strings are
    remapped consistently (see the module docstring; the input is not changed).

    columns: the columns holding DICOM; default every column whose values can hold DICOM bytes or paths. A
        column of DICOM paths becomes a DICOM struct column, since the de-identified file travels as bytes.
        Every other column's strings are remapped (ids, file names, folder names, UIDs).
    salt, keep_private, burned_in: as `medhub.io.deidentify.deidentify` (salt None: a random per-process salt).
    uid_map: old UID -> new UID (and id or folder name -> pseudonym), shared by every row and split so that
        UIDs stay consistent; filled in place when given (keep it, privately, to re-link the data later).
    The format (e.g. `decode_dicom_columns`' transform) is kept.
    """
    uid_map = {} if uid_map is None else uid_map
    first_pass = {}
    for split, data in _splits(dataset).items():
        structs, others = dicom_columns(data)
        names = structs + others if columns is None else list(columns)
        bad = [c for c in names if c not in structs and c not in others]
        if bad:
            raise InputError(f"column(s) {bad} of {split or 'the dataset'} hold no DICOM; DICOM columns: "
                             f"{structs + others}")
        paths = [c for c in names if c not in structs and data.features[c] in (Value("string"), Value("large_string"))
                 and any(is_dicom_file(v) for v in _column_values(data, c))]
        features = Features({**data.features, **{c: dict(DICOM_STRUCT) for c in paths}})
        prefix = f"{split}/" if split else ""

        def clean(batch: dict[str, list], indices: list[int], names=names, structs=structs, paths=paths,
                  prefix=prefix) -> dict[str, list]:
            out = {c: [] for c in batch}
            for j, i in enumerate(indices):
                cleaner = _Cleaner(uid_map, salt, keep_private, burned_in)
                row = {c: cleaner.value(batch[c][j], f"{prefix}{c}[row {i}]", i, strict=c in structs,
                                        top=c in paths) for c in names}
                for c in batch:  # after every DICOM value of the row: its renames are known
                    out[c].append(cleaner.rewrite(row[c] if c in row else batch[c][j]))
            return out

        first_pass[split] = _raw(data).map(clean, batched=True, batch_size=BATCH_SIZE, with_indices=True,
                                           features=features, load_from_cache_file=False, desc="De-identifying DICOM")
    out = {}
    for split, data in first_pass.items():  # UIDs of later rows (or splits) written in earlier rows' strings
        text_columns = [c for c, f in data.features.items() if may_hold_dicom(f)]
        remap = _Cleaner(uid_map, salt, keep_private, burned_in)

        def second(batch: dict[str, list], remap=remap, text_columns=text_columns) -> dict[str, list]:
            return {c: [remap.rewrite(v) for v in batch[c]] for c in text_columns}

        result = data.map(second, batched=True, batch_size=BATCH_SIZE, features=data.features,
                          load_from_cache_file=False, desc="Remapping UIDs") if text_columns else data
        fmt = dataset[split].format if split is not None else dataset.format
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
