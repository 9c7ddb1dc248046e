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

The data's commit is followed by one for the dataset card (`medhub.data.dataset_card`: Hub metadata from the
uploader's `DatasetCardInfo`, provenance, what the check read and the profile it verifies, features and splits,
citation), which keeps the `dataset_info` / `configs` that `datasets` wrote into the README.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict

from ..errors import HubError, InputError
from ..hub import endpoint
from ..io.deidentify import find_identifying_attributes
from ..logging_utils import get_logger
from .dataset_card import DatasetCardInfo, DicomCheck, dataset_card, method_counts
from .deidentify_dataset import deidentify_dataset
from .dicom_values import (
    BATCH_SIZE,
    column_batches,
    column_values,
    dicom_columns,
    dicom_parts,
    header_uids,
    is_dicom_struct,
    raw_dataset,
    read_header,
    splits_of,
    strings_in,
    uids_in,
)

logger = get_logger("data.sharing")

MAX_LISTED = 20  # rows named in an error message; the rest are counted


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


def find_identifying_data(dataset_or_dict, columns: list[str] | None = None) -> list[Finding]:
    """Every DICOM file (and every string holding a foreign UID) of `dataset_or_dict` that still identifies a
    patient (empty when all are clean).

    columns: the columns to scan; default every column whose values can hold DICOM bytes, paths or strings
    (see the module docstring). Only headers are read (`stop_before_pixels=True`).
    """
    return _scan(dataset_or_dict, columns)[0]


def _scan(dataset_or_dict, columns: list[str] | None) -> tuple[list[Finding], DicomCheck]:
    """(findings, what was checked: the number of DICOM files and their DeidentificationMethod values)."""
    findings: list[Finding] = []
    files, methods = 0, Counter()
    for split, dataset in splits_of(dataset_or_dict).items():
        structs, others = dicom_columns(dataset)
        names = structs + others if columns is None else list(columns)
        missing = [c for c in names if c not in dataset.column_names]
        if missing:
            raise InputError(f"no column(s) {missing} in {split or 'the dataset'}; it has {dataset.column_names}")
        known_uids: set[str] = set()
        written_uids: list[tuple[str, int, str, str]] = []  # (column, row, string, uid)
        for column in names:
            for row, value in enumerate(column_values(dataset, column)):
                prefix = f"{split + '/' if split else ''}{column}[row {row}]"
                for where, source, data, path in dicom_parts(value, column, strict=column in structs):
                    header = read_header(data, path, f"{prefix} {source}")
                    files += 1
                    methods[str(header.get("DeidentificationMethod", "")) or "(none)"] += 1
                    known_uids |= header_uids(header)
                    found = find_identifying_attributes(header)
                    if found:
                        findings.append(Finding(split, where, row, source, tuple(found)))
                written_uids += [(column, row, text, uid) for text in strings_in(value) for uid in uids_in(text)]
        if known_uids:  # a split holding DICOM: a UID none of its files holds is an original one
            findings += [Finding(split, column, row, text, (f"{uid}: a DICOM UID that none of the files holds (an "
                                                            "original UID kept in an id, file or folder name?)",))
                         for column, row, text, uid in written_uids if uid not in known_uids]
    return findings, DicomCheck(True, files, method_counts(methods))


def check_deidentified(dataset_or_dict, columns: list[str] | None = None) -> DicomCheck:
    """Raise `IdentifyingDataError` naming every row, file and attribute that still identifies a patient; return
    what was checked (for the dataset card)."""
    findings, check = _scan(dataset_or_dict, columns)
    if not findings:
        return check
    listed = "\n".join(f"  {f.describe()}" for f in findings[:MAX_LISTED])
    more = f"\n  ... and {len(findings) - MAX_LISTED} more" if len(findings) > MAX_LISTED else ""
    raise IdentifyingDataError(
        f"{len(findings)} value(s) still hold identifying data (PS3.15 Basic Profile):\n{listed}{more}\n"
        "Expected de-identified DICOM: use medhub.data.sharing.deidentify_dataset(dataset) (or "
        "medhub.io.deidentify.deidentify per file) first, or pass allow_identifying_data=True to push anyway.",
        findings,
    )


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
                                       for batch in column_batches(dataset, c) for v in batch)]
    if not needs:
        return dataset

    def embed(batch, indices):
        return {c: [_embed_value(v, f"{c}[row {i}]") for v, i in zip(batch[c], indices)] for c in needs}

    return raw_dataset(dataset).map(embed, batched=True, batch_size=BATCH_SIZE, with_indices=True,
                             features=dataset.features, load_from_cache_file=False, desc="Embedding DICOM files")


def push_dataset(dataset_or_dict, repo_id: str, *, card: DatasetCardInfo | None = None,
                 allow_identifying_data: bool = False, private: bool | None = None, token: str | bool | None = None,
                 commit_message: str | None = None, revision: str | None = None):
    """Push a Dataset / DatasetDict to the Hub (`push_to_hub`) after checking that its DICOM is de-identified,
    then its dataset card (README.md, `medhub.data.dataset_card`): licence, task categories, size, tags,
    provenance, the de-identification applied, features and splits, citation.

    Refuses with `IdentifyingDataError` (nothing is uploaded) when any DICOM file still identifies a patient
    (see the module docstring), unless `allow_identifying_data=True` is passed explicitly (the card then says
    the data were not checked). Path-only DICOM values are embedded first so the pushed data are
    self-contained. `card`: what the uploader states (`DatasetCardInfo`); without it the card says the licence
    is unknown. Returns the client's `CommitInfo` of the data.
    """
    if not isinstance(allow_identifying_data, bool):
        raise InputError(f"allow_identifying_data={allow_identifying_data!r}: expected True or False")
    if card is not None and not isinstance(card, DatasetCardInfo):
        raise InputError(f"card: expected a medhub.data.DatasetCardInfo, got {type(card).__name__}")
    splits = splits_of(dataset_or_dict)
    if allow_identifying_data:
        logger.warning("pushing the dataset to %s WITHOUT the de-identification check (allow_identifying_data="
                       "True): any patient data in its DICOM headers will be shared", repo_id)
        check = DicomCheck(False)
    else:
        check = check_deidentified(dataset_or_dict)
    if card is None:
        logger.warning("pushing %s without card information: its dataset card says the licence is unknown (pass "
                       "card=medhub.data.DatasetCardInfo(license=..., task_categories=..., source=...))", repo_id)
    embedded = {name: embed_dicom_files(split) for name, split in splits.items()}
    to_push = embedded[None] if None in embedded else DatasetDict(embedded)
    from huggingface_hub import errors as hf_errors

    try:
        info = to_push.push_to_hub(repo_id, private=private, token=token, commit_message=commit_message,
                                   revision=revision)
        _push_card(to_push, repo_id, card, check, token, revision, info.oid)
    except hf_errors.HfHubHTTPError as err:
        raise HubError(f"push of the dataset to {repo_id} at {endpoint()} failed: {str(err)[:400]}") from err
    logger.info("pushed dataset to %s (%s) with its card", repo_id, getattr(info, "oid", None) or info)
    return info


def _push_card(dataset, repo_id: str, card: DatasetCardInfo | None, check: DicomCheck, token, revision,
               parent: str | None) -> None:
    """Write the card over the README `datasets.push_to_hub` just wrote, keeping its `dataset_info` / `configs`."""
    from huggingface_hub import DatasetCard, hf_hub_download

    written = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=parent or revision, token=token)
    hub_metadata = DatasetCard.load(written).data.to_dict()
    dataset_card(dataset, card, check, hub_metadata).push_to_hub(
        repo_id, token=token, repo_type="dataset", revision=revision, parent_commit=parent,
        commit_message="Dataset card (medhub.data.push_dataset)")


__all__ = ["DatasetCardInfo", "Finding", "IdentifyingDataError", "check_deidentified", "deidentify_dataset",
           "dicom_columns", "embed_dicom_files", "find_identifying_data", "push_dataset"]
