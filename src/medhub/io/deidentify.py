"""De-identification of DICOM files: PS3.15 Annex E, Basic Application Level Confidentiality Profile.

Why here: medhub pushes datasets and model cards to a hub; a DICOM header holds names, IDs, birth
dates, addresses, institutions and dates that must not leave the hospital. `deidentify` applies the
profile's action to each attribute of the whole PS3.15 Table E.1-1 (current edition, kept as data in
`medhub.io.deidentify_profile`), in the dataset and in every nested sequence item:

    X remove   Z empty (zero-length)   D dummy value   U replace the UID   K keep
    Compound actions ("X/Z", "Z/D", "X/Z/D", "X/D", "X/Z/U*") are resolved once, in `resolve_action`:
    Z wherever Z is allowed (keeps Type 2 attributes present without information), X for "X/D"
    (those attributes are Type 3 in the common image IODs), and for "X/Z/U*" sequences the items are
    kept and their UIDs replaced. D on a sequence empties it.

For attributes the table does not list, a VR rule (`vr_rule`, a medhub addition): dates, times and
date-times (DA/DT/TM) are removed wherever they are, person names (PN) get a dummy name, and free text
(LO/LT/SH/ST/UC/UT/UN) in private attributes or public ones no dictionary knows is removed. Private
attributes (odd groups) are removed unless `keep_private` (then the VR rule applies to them), overlay/curve
groups (60xx/50xx) are removed, and PatientIdentityRemoved = YES, DeidentificationMethod and the code
(DCM, 113100) are recorded. UIDs map to "2.25.<int>" from a salted SHA-256, consistently across files
through a shared `uid_map`; pixel data are never touched. `find_identifying_attributes` checks the same
table and rule, so any attribute whose action was not applied is reported.

Burned-in annotation: the profile requires cleaning the pixels, which medhub does not do. With
BurnedInAnnotation = "YES" `deidentify` refuses (InputError) by default; `burned_in="mark"`
de-identifies the header, keeps the flag, says so in DeidentificationMethod, and
`find_identifying_attributes` keeps reporting it, so `assert_deidentified` (the hub push check)
still refuses the file. Not a certified de-identification: check the result for your use.
"""

from __future__ import annotations

import copy
import hashlib
import secrets
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_has_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ..errors import InputError
from .deidentify_profile import BASIC_PROFILE_TABLE, MEDHUB_ADDITIONS, PROFILE_EDITION
from .dicom import dcmread_bounded


def resolve_action(action: str) -> str:
    """One of X, Z, D, U, U* for a Table E.1-1 action (see the module docstring for the choices)."""
    options = action.split("/")
    if "U*" in options:
        return "U*"
    if len(options) == 1:
        return action
    return "Z" if "Z" in options else "X"


PROFILE_ROWS = BASIC_PROFILE_TABLE + MEDHUB_ADDITIONS
BASIC_PROFILE: dict[int, tuple[str, str]] = {
    tag: (keyword, resolve_action(action)) for tag, keyword, action in PROFILE_ROWS
}
# Dummy values (action D) by value representation; other VRs get DUMMY_TEXT.
DUMMY_VALUES = {
    "PN": "ANONYMOUS", "DA": "19000101", "TM": "000000.00", "DT": "19000101000000.000000",
    "AS": "000Y", "UI": "2.25.0", "IS": "0", "DS": "0", "OB": b"\x00\x00", "OW": b"\x00\x00", "UN": b"\x00\x00",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0, "AT": 0,
}
DUMMY_TEXT = "ANONYMIZED"
DEIDENTIFICATION_METHOD = "PS3.15 Annex E Basic Profile, medhub"  # LO: at most 64 characters
BURNED_IN_NOTE = "; pixels NOT cleaned"  # burned-in annotation kept (burned_in="mark")
REPLACED_UID_ROOT = "2.25."  # every UID `replace_uid` makes: 2.25.<128-bit integer>
PROCESS_SALT = secrets.token_hex(16)

# The VR rule, for attributes the table does not list (see `vr_rule`).
DATE_VRS = frozenset({"DA", "DT", "TM"})
TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT", "UN"})  # UN: bytes of unknown meaning, maybe text


def _is_overlay_or_curve(tag: int) -> bool:
    """Curve groups 50xx and overlay groups 60xx (even): the profile removes their data and comments,
    and an overlay can carry burned-in text, so the whole group goes."""
    group = tag >> 16
    return group % 2 == 0 and (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF)


def _is_private(tag: int) -> bool:
    return (tag >> 16) % 2 == 1


def _vr(element) -> str:
    return str(element.VR).split(" or ")[0]  # "US or SS" for an element set by keyword: either is fine


def vr_rule(element) -> tuple[str, str]:
    """(action, reason) for an attribute Table E.1-1 does not list; action "K" keeps it.

    Dates, times and date-times (DA/DT/TM) are removed anywhere (also in nested sequences): a date is
    identifying wherever it sits. Person names (PN) get the dummy name. In private attributes (kept only
    with keep_private) and in public attributes no data dictionary knows, free text (LO/LT/SH/ST/UC/UT),
    unknown bytes (UN), names and dates are removed; private creator elements stay (they name the blocks).
    """
    tag, vr = int(element.tag), _vr(element)
    unknown = _is_private(tag) or not dictionary_has_tag(tag)
    if unknown and element.tag.is_private_creator:
        return "K", ""
    if vr in DATE_VRS:
        return "X", "a date/time the profile table does not list"
    if unknown and vr in TEXT_VRS | {"PN"}:
        return "X", "free text in a private or unknown attribute"
    if vr == "PN":
        return "D", "person name"
    return "K", ""


def action_for(element) -> tuple[str, str]:
    """(action, reason) for one element: the table's action for public attributes it lists, else the VR rule."""
    tag = int(element.tag)
    if not _is_private(tag) and tag in BASIC_PROFILE:
        return BASIC_PROFILE[tag][1], ""
    return vr_rule(element)


def replace_uid(uid: str, uid_map: dict[str, str], salt: str) -> str:
    """The new UID for `uid`: taken from / stored into `uid_map`; else 2.25.<128-bit salted SHA-256>."""
    uid = str(uid).strip()
    if uid not in uid_map:
        digest = hashlib.sha256(f"{salt}\x00{uid}".encode()).digest()
        uid_map[uid] = f"{REPLACED_UID_ROOT}{int.from_bytes(digest[:16], 'big')}"
    return uid_map[uid]


def is_replaced_uid(uid) -> bool:
    """Whether `uid` has the form `replace_uid` gives (2.25.<integer>); an original UID usually does not."""
    text = str(uid).strip()
    return text.startswith(REPLACED_UID_ROOT) and text[len(REPLACED_UID_ROOT):].isdigit()


def _values(element) -> list:
    return list(element.value) if element.VM > 1 else [element.value]


def _dummy(element) -> object:
    if element.VR == "SQ":
        return Sequence([])
    return DUMMY_VALUES.get(_vr(element), DUMMY_TEXT)


def _clean(ds: Dataset, uid_map: dict[str, str], salt: str, keep_private: bool) -> None:
    """Apply the profile (and the VR rule) to `ds` in place, recursing into every remaining sequence item."""
    for element in list(ds):
        tag = int(element.tag)
        if (_is_private(tag) and not keep_private) or _is_overlay_or_curve(tag):
            del ds[tag]
            continue
        action, _ = action_for(element)
        if action == "X":
            del ds[tag]
            continue
        if action == "Z":
            element.value = Sequence([]) if element.VR == "SQ" else ""
        elif action == "D":
            element.value = _dummy(element)
        elif action == "U" and element.value:
            new = [replace_uid(v, uid_map, salt) for v in _values(element)]
            element.value = new if element.VM > 1 else new[0]
        if element.VR == "SQ":
            for item in element.value:
                _clean(item, uid_map, salt, keep_private)


def _load(dataset_or_path) -> Dataset:
    if isinstance(dataset_or_path, Dataset):
        return dataset_or_path
    if isinstance(dataset_or_path, (str, Path)):
        path = Path(dataset_or_path)
        if not path.is_file():
            raise InputError(f"DICOM file {str(path)!r} does not exist; expected a path to a .dcm file")
        try:
            return dcmread_bounded(path)  # a deflated file is refused before it inflates past medhub's limits
        except pydicom.errors.InvalidDicomError as error:
            raise InputError(f"{str(path)!r} is not a DICOM file: {error}") from error
    raise InputError(f"got {type(dataset_or_path).__name__}: expected a pydicom Dataset or a path to a DICOM file")


def deidentify(
    dataset_or_path,
    out_path: str | Path | None = None,
    uid_map: dict[str, str] | None = None,
    keep_private: bool = False,
    salt: str | None = None,
    burned_in: str = "refuse",
) -> Dataset:
    """A de-identified copy of a DICOM dataset (the input is not modified); written to `out_path` if given.

    uid_map: shared between the files of a study/series so that their UIDs stay consistent (the
        mapping old -> new is stored in it, so it also lets you re-link the files later).
    salt: secret mixed into the UID hashes; None uses a random salt drawn once per process (consistent
        within one run, not re-derivable from the original UIDs). Pass your own to repeat a mapping.
    burned_in: "refuse" (raise InputError when BurnedInAnnotation is YES) or "mark" (see module doc).
    """
    if burned_in not in ("refuse", "mark"):
        raise InputError(f"burned_in={burned_in!r}: expected 'refuse' or 'mark'")
    source = _load(dataset_or_path)
    burned = str(source.get("BurnedInAnnotation", "")).upper() == "YES"
    if burned and burned_in == "refuse":
        raise InputError(
            "BurnedInAnnotation is YES: the pixels may show identifying text that medhub does not clean; "
            "expected a file without burned-in annotation (or pass burned_in='mark' and clean the pixels)"
        )
    ds = copy.deepcopy(source)
    uid_map = {} if uid_map is None else uid_map
    salt = PROCESS_SALT if salt is None else str(salt)
    _clean(ds, uid_map, salt, keep_private)
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "MediaStorageSOPInstanceUID" in file_meta:
        file_meta.MediaStorageSOPInstanceUID = replace_uid(file_meta.MediaStorageSOPInstanceUID, uid_map, salt)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD + (BURNED_IN_NOTE if burned else "")
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    if "PatientName" not in ds:
        ds.PatientName = ""
    if "PatientID" not in ds:
        ds.PatientID = ""
    if out_path is not None:
        save(ds, out_path)
    return ds


def save(ds: Dataset, out) -> None:
    """Write `ds` to a path or binary stream: as a DICOM file when it has file meta information (a transfer
    syntax), else as the bare data set it was read as (in its original encoding)."""
    meta = getattr(ds, "file_meta", None)
    ds.save_as(Path(out) if isinstance(out, str) else out,
               enforce_file_format=meta is not None and "TransferSyntaxUID" in meta)


def _describe(path: str, element) -> str:
    listed = BASIC_PROFILE.get(int(element.tag), ("",))[0]  # the table names attributes pydicom may not know
    name = element.keyword or listed or ("private" if element.tag.is_private else "unknown attribute")
    return f"{path}{element.tag} {name}"


def _find(ds: Dataset, path: str, found: list[str]) -> None:
    for element in ds:
        tag = int(element.tag)
        where = _describe(path, element)
        empty = element.value in (None, "", b"") or (element.VR == "SQ" and len(element.value) == 0)
        action, reason = action_for(element)
        if _is_private(tag):
            found.append(f"{where}: private attribute")
        elif _is_overlay_or_curve(tag):
            found.append(f"{where}: overlay/curve data")
        elif action == "X":
            found.append(f"{where}: must be removed" + (f" ({reason})" if reason else ""))
        elif action == "Z" and not empty:
            found.append(f"{where}: must be empty")
        elif action == "D" and element.VR == "SQ" and not empty:
            found.append(f"{where}: must be replaced (an empty sequence)")
        elif action == "D" and element.VR != "SQ" and not empty and element.value != _dummy(element):
            found.append(f"{where}: " + ("person name" if reason == "person name" else "must hold a dummy value"))
        elif action == "U" and not empty and not all(is_replaced_uid(v) for v in _values(element)):
            found.append(f"{where}: must be a replaced UID ({REPLACED_UID_ROOT}<integer>), not the original")
        elif tag == 0x00280301 and str(element.value).upper() == "YES":
            found.append(f"{where}: burned-in annotation in the pixel data")
        if element.VR == "SQ":
            for i, item in enumerate(element.value):
                _find(item, f"{path}{element.keyword or element.tag}[{i}].", found)


def find_identifying_attributes(ds: Dataset) -> list[str]:
    """What in `ds` still identifies the patient under the Basic Profile (empty when clean).

    Each entry names the attribute path and why, e.g. "(0010,0010) PatientName: must be empty": every
    attribute of Table E.1-1 whose action was not applied, and what the VR rule (`vr_rule`) removes.
    A UID the profile replaces must have the form `deidentify` gives it (2.25.<integer>), so an original
    UID is caught (one that already had that form cannot be told apart); a dataset without
    PatientIdentityRemoved = YES is reported too. Only the header is checked; BurnedInAnnotation = YES
    is reported.
    """
    if not isinstance(ds, Dataset):
        raise InputError(f"got {type(ds).__name__}: expected a pydicom Dataset")
    found: list[str] = []
    _find(ds, "", found)
    meta_uid = getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPInstanceUID")
    if meta_uid and not is_replaced_uid(meta_uid):
        found.append("(0002,0003) MediaStorageSOPInstanceUID: must be a replaced UID "
                     f"({REPLACED_UID_ROOT}<integer>), not the original")
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        found.append("(0012,0062) PatientIdentityRemoved: not YES (UIDs may be the originals)")
    return found


def profile_statement() -> list[str]:
    """What `deidentify` removes and replaces, in sentences (for a dataset card): the profile and its table,
    the attributes per action, the rules for what the table does not list, and what is not done (pixels)."""
    actions = Counter(action for _, action in BASIC_PROFILE.values())
    return [
        "DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile (DCM 113100): Table E.1-1 of "
        f"edition {PROFILE_EDITION} ({len(BASIC_PROFILE_TABLE)} attributes) and {len(MEDHUB_ADDITIONS)} rows of "
        "earlier editions it no longer lists, applied by `medhub.io.deidentify`.",
        f"{actions['X']} attributes removed, {actions['Z']} emptied (kept, zero length), {actions['D']} replaced by "
        f"dummy values, {actions['U'] + actions['U*']} UIDs replaced by {REPLACED_UID_ROOT}<salted SHA-256> UIDs, "
        "the same original UID always by the same new one (studies and series stay linked).",
        "Private attributes (odd groups) and overlay/curve groups (60xx/50xx) removed; dates and times (DA/DT/TM) "
        "the table does not list removed wherever they are; other person names replaced by a dummy name; free "
        "text in attributes no dictionary knows removed.",
        f"Each file records PatientIdentityRemoved = YES and DeidentificationMethod = \"{DEIDENTIFICATION_METHOD}\".",
        "Pixel data are not cleaned: a file flagged BurnedInAnnotation = YES is refused, and text burned into the "
        "pixels of other files is not detected.",
    ]


def assert_deidentified(ds_or_paths) -> None:
    """Raise InputError listing, per file, what still identifies a patient (used before a hub push).

    Accepts a Dataset, a path, or an iterable of them.
    """
    if isinstance(ds_or_paths, (Dataset, str, Path)):
        ds_or_paths = [ds_or_paths]
    if not isinstance(ds_or_paths, Iterable):
        raise InputError(f"got {type(ds_or_paths).__name__}: expected Dataset(s) or DICOM path(s)")
    problems = []
    for i, item in enumerate(ds_or_paths):
        found = find_identifying_attributes(_load(item))
        if found:
            name = str(item) if isinstance(item, (str, Path)) else f"dataset {i}"
            problems.append(f"{name}: " + "; ".join(found))
    if problems:
        raise InputError(
            "identifying attributes remain (expected DICOM de-identified with medhub.io.deidentify.deidentify):\n"
            + "\n".join(problems)
        )
