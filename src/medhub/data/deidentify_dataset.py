"""`deidentify_dataset`: a dataset's DICOM de-identified with one UID map, and every string derived from a path or
header remapped consistently (see `medhub.data.sharing`'s docstring)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pydicom
from datasets import DatasetDict, Features, Value

from ..errors import InputError
from ..io.deidentify import PROCESS_SALT, deidentify, save
from ..io.dicom import dcmread_bounded
from .dicom_feature import DICOM_STRUCT
from .dicom_values import (
    BATCH_SIZE,
    UID_PATTERN,
    column_values,
    dicom_columns,
    is_dicom_bytes,
    is_dicom_file,
    is_file_struct,
    may_hold_dicom,
    raw_dataset,
    splits_of,
    struct_files,
)

HEADER_IDENTIFIERS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "PatientName")
FOLDER_LEVELS = 3  # folders above a file whose names (holding a digit) are pseudonymised where they appear


def pseudonym(value: str, uid_map: dict[str, str], salt: str) -> str:
    """A salted pseudonym `anon-<16 hex>` for an id or folder name, stored in (and taken from) `uid_map`."""
    if value not in uid_map:
        uid_map[value] = "anon-" + hashlib.sha256(f"{salt}\x00name\x00{value}".encode()).hexdigest()[:16]
    return uid_map[value]


class _Cleaner:
    """De-identifies the DICOM inside one row's values and remembers what its paths and headers were called."""

    def __init__(self, uid_map: dict[str, str], salt: str | None, keep_private: bool, burned_in: str):
        self.uid_map, self.salt = uid_map, PROCESS_SALT if salt is None else str(salt)
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
        if is_file_struct(value):
            files = struct_files(value, where, strict)
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
    for split, data in splits_of(dataset).items():
        structs, others = dicom_columns(data)
        names = structs + others if columns is None else list(columns)
        bad = [c for c in names if c not in structs and c not in others]
        if bad:
            raise InputError(f"column(s) {bad} of {split or 'the dataset'} hold no DICOM; DICOM columns: "
                             f"{structs + others}")
        paths = [c for c in names if c not in structs and data.features[c] in (Value("string"), Value("large_string"))
                 and any(is_dicom_file(v) for v in column_values(data, c))]
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

        first_pass[split] = raw_dataset(data).map(clean, batched=True, batch_size=BATCH_SIZE, with_indices=True,
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


