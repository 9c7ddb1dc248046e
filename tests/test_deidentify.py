"""medhub.io.deidentify on the real chest radiograph DICOM files, with identifying attributes added."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.datadict import DicomDictionary, dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from medhub.errors import InputError
from medhub.io.deidentify import (
    BASIC_PROFILE,
    BASIC_PROFILE_TABLE,
    DUMMY_VALUES,
    PROFILE_ROWS,
    assert_deidentified,
    deidentify,
    find_identifying_attributes,
)

SECRETS = ["Doe^Jane", "PID-12345", "19700101", "1 Main Street, Springfield", "St Elsewhere Hospital",
           "Dr^Who", "ACC-9876", "OTHER-ID-1", "SN-424242", "private secret", "Nested^Name", "Op^Erator"]


def _dicom_files(shared_data):
    files = sorted((shared_data / "chest-xray-samples").glob("*.dcm"))
    assert len(files) == 2
    return files


def identifiable(path) -> Dataset:
    """The real radiograph with the kinds of identifying attributes a hospital export carries."""
    ds = pydicom.dcmread(path)
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID-12345"
    ds.PatientBirthDate = "19700101"
    ds.PatientAddress = "1 Main Street, Springfield"
    ds.InstitutionName = "St Elsewhere Hospital"
    ds.InstitutionAddress = "1 Main Street, Springfield"
    ds.ReferringPhysicianName = "Dr^Who"
    ds.AccessionNumber = "ACC-9876"
    ds.OtherPatientIDs = "OTHER-ID-1"
    ds.DeviceSerialNumber = "SN-424242"
    ds.OperatorsName = "Op^Erator"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "19700101"
    ds.ImageComments = "Doe^Jane, PID-12345"
    ds.FrameOfReferenceUID = ds.StudyInstanceUID + ".9"
    block = ds.private_block(0x0011, "HOSPITAL PACS", create=True)
    block.add_new(0x01, "LO", "private secret")
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = "T-D3000", "SRT"
    item.PersonName = "Nested^Name"  # PS3.15 action D inside a sequence
    inner = Dataset()
    inner.ReferencedSOPClassUID = ds.SOPClassUID
    inner.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    item.ReferencedImageSequence = Sequence([inner])
    ds.AnatomicRegionSequence = Sequence([item])
    return ds


def all_values(ds: Dataset) -> list[str]:
    values = []
    for element in ds.iterall():
        if element.VR not in ("SQ", "OB", "OW") and element.value is not None:
            values.append(str(element.value))
    return values


# VRs (PS3.6 2026c) of the Table E.1-1 attributes that pydicom 3.0's data dictionary does not know yet.
NEWER_VRS = {
    0x00081301: "SQ", 0x00081302: "SQ", 0x00081303: "SQ", 0x00081304: "SQ", 0x00100011: "SQ", 0x00100012: "PN",
    0x00100013: "UT", 0x00100014: "SQ", 0x00100015: "SQ", 0x00100016: "LT", 0x00100041: "SQ", 0x00100042: "UT",
    0x00100043: "SQ", 0x00100044: "SQ", 0x00100045: "LT", 0x00100046: "SQ", 0x00100047: "UR", 0x00102162: "UC",
    0x0040A034: "DT", 0x0040A035: "DT", 0x0040B034: "DT", 0x0040B036: "DT", 0x0040B03B: "LO", 0x0040B03F: "LO",
    0x0040E012: "UR",
}
ORIGINAL_UID = "1.2.826.0.1.3680043.9.7133.15"  # an original-looking UID (not 2.25.<int>)
CARRIER = 0x00082218  # AnatomicRegionSequence: not in the table, kept, its items cleaned
SAMPLES = {"DA": "20240315", "TM": "101500", "DT": "20240315101500", "PN": "Doe^John", "UI": ORIGINAL_UID,
           "AS": "042Y", "DS": "12.5", "IS": "42", "US": 7, "SS": -7, "UL": 7, "SL": -7, "UV": 7, "SV": -7,
           "FL": 1.5, "FD": 1.5, "OB": b"MRN123456\x00", "OW": b"MRN123456\x00", "UN": b"MRN123456\x00",
           "OD": bytes(8), "OF": bytes(4), "OL": bytes(4), "OV": bytes(8), "AT": 0x00100010, "CS": "SECRET",
           "AE": "SECRETAE", "UR": "http://example.org/MRN123456"}


def vr_of(tag: int) -> str:
    return (dictionary_VR(tag) if dictionary_has_tag(tag) else NEWER_VRS[tag]).split(" or ")[0]


def sample(tag: int):
    """(VR, value) of an identifying-looking value for `tag`; a sequence holds one item with an original UID."""
    vr = vr_of(tag)
    if vr == "SQ":
        item = Dataset()
        item.ReferencedSOPInstanceUID = ORIGINAL_UID
        return vr, Sequence([item])
    return vr, SAMPLES.get(vr, "MRN123456")


def put(ds: Dataset, tag: int) -> None:
    vr, value = sample(tag)
    (ds.file_meta if tag >> 16 == 0x0002 else ds).add_new(tag, vr, value)


def tag_text(tag: int) -> str:
    return str(Tag(tag))


def test_profile_table_is_well_formed():
    assert len(BASIC_PROFILE_TABLE) >= 650  # the whole table, 2026c edition
    tags = [tag for tag, _, _ in PROFILE_ROWS]
    table = tags[:len(BASIC_PROFILE_TABLE)]
    assert len(tags) == len(set(tags)) and list(table) == sorted(table)
    for tag, keyword, action in PROFILE_ROWS:
        assert keyword_for_tag(tag) == keyword if dictionary_has_tag(tag) else tag in NEWER_VRS, hex(tag)
        assert set(action.split("/")) <= {"X", "Z", "D", "U", "U*"}, keyword
    assert {tag for tag, _, _ in BASIC_PROFILE_TABLE if not dictionary_has_tag(tag)} == set(NEWER_VRS)
    # the attributes issue 15 found surviving are listed, with the table's actions
    for keyword, action in [("InstanceCreationDate", "X/D"), ("InstanceCreationTime", "X/Z/D"),
                            ("DateOfSecondaryCapture", "X"), ("DischargeDate", "X"), ("StationAETitle", "X"),
                            ("BarcodeValue", "X/Z"), ("LabelText", "X/Z")]:
        assert (keyword, action) in {(k, a) for _, k, a in BASIC_PROFILE_TABLE}, keyword


def check_applied(clean: Dataset, tag: int, where: str) -> None:
    """The resolved action of `tag` was applied in `clean` (a dataset or a sequence item)."""
    keyword, action = BASIC_PROFILE[tag]
    holder = clean.file_meta if tag >> 16 == 0x0002 else clean
    what = f"{where} {tag_text(tag)} {keyword} ({action})"
    if action == "X":
        assert tag not in holder, what
        return
    assert tag in holder, what
    value = holder[tag].value
    if action == "Z":
        assert value in ("", b"", None) or (isinstance(value, Sequence) and len(value) == 0), what
    elif action == "D":
        expected = Sequence([]) if vr_of(tag) == "SQ" else DUMMY_VALUES.get(vr_of(tag), "ANONYMIZED")
        assert value == expected, what
    elif action == "U":
        assert str(value).startswith("2.25.") and value != ORIGINAL_UID, what
    else:  # U*: the items stay, their UIDs replaced
        assert value[0].ReferencedSOPInstanceUID.startswith("2.25."), what


def test_every_table_attribute_is_applied_by_deidentify(shared_data):
    """Generated from the table: every attribute, at the top level and in a sequence item, on the real file."""
    ds = pydicom.dcmread(_dicom_files(shared_data)[0])
    item = Dataset()
    for tag, _, _ in PROFILE_ROWS:
        put(ds, tag)
        if tag >> 16 != 0x0002:
            put(item, tag)
    ds.add_new(CARRIER, "SQ", Sequence([item]))
    clean = deidentify(ds, salt="table-test")
    for tag, _, _ in PROFILE_ROWS:
        check_applied(clean, tag, "top level:")
        if tag >> 16 != 0x0002:
            check_applied(clean[CARRIER].value[0], tag, "nested:")
    assert find_identifying_attributes(clean) == []
    assert clean.PixelData == ds.PixelData and clean.Rows == ds.Rows


def test_every_surviving_table_attribute_is_caught(shared_data):
    """Generated from the table: each attribute put back (not de-identified) on a clean file is reported."""
    clean = deidentify(_dicom_files(shared_data)[0], salt="table-test")
    assert find_identifying_attributes(clean) == []
    for tag, keyword, action in PROFILE_ROWS:
        for nested in (False, True):
            if nested and tag >> 16 == 0x0002:
                continue
            holder = Dataset() if nested else clean
            put(holder, tag)
            if nested:
                clean.add_new(CARRIER, "SQ", Sequence([holder]))
            found = find_identifying_attributes(clean)
            if tag >> 16 == 0x0002:
                clean.file_meta.MediaStorageSOPInstanceUID = clean.SOPInstanceUID
            else:
                del clean[CARRIER if nested else tag]
            assert any(tag_text(tag) in entry or f"{keyword}[0]." in entry for entry in found), (keyword, found)
            assert find_identifying_attributes(clean) == []
    for tag, _, _ in PROFILE_ROWS:
        put(clean, tag)
    with pytest.raises(InputError, match="BarcodeValue: must be empty"):
        assert_deidentified(clean)


def test_issue_15_example_leaves_none_of_the_three(shared_data):
    ds = pydicom.dcmread(_dicom_files(shared_data)[0])
    ds.InstanceCreationDate = "20240315"
    ds.BarcodeValue = "MRN123456"
    ds.LabelText = "DOE JOHN"
    c = deidentify(ds)
    assert_deidentified(c)
    assert "InstanceCreationDate" not in c and c.BarcodeValue == "" and c.LabelText == ""
    assert not any(s in str(e.value) for e in c.iterall() for s in ("20240315", "MRN123456", "DOE JOHN"))
    # had they been left, the check fails loudly, naming each
    c.InstanceCreationDate, c.BarcodeValue, c.LabelText = "20240315", "MRN123456", "DOE JOHN"
    with pytest.raises(InputError) as raised:
        assert_deidentified(c)
    for keyword in ("InstanceCreationDate: must be removed", "BarcodeValue: must be empty", "LabelText: must be empty"):
        assert keyword in str(raised.value)


def unlisted(vrs: set[str]) -> list[int]:
    """Public attributes of pydicom's dictionary with these VRs that the table does not list."""
    return sorted(tag for tag, entry in DicomDictionary.items()
                  if entry[0] in vrs and tag not in BASIC_PROFILE and tag >> 16 not in (0x0000, 0x0002)
                  and not 0x5000 <= tag >> 16 <= 0x60FF)


def test_vr_rule_removes_dates_and_names_the_table_does_not_list(shared_data):
    """Every DA/DT/TM and PN attribute of the data dictionary that the table does not list, at the top level
    and nested: dates removed, names replaced by the dummy name; each caught when it survives."""
    dates, names = unlisted({"DA", "DT", "TM"}), unlisted({"PN"})
    assert len(dates) >= 10 and names  # the table lists most dates; the rule covers the rest
    ds = pydicom.dcmread(_dicom_files(shared_data)[0])
    item = Dataset()
    for tag in dates + names:
        put(ds, tag)
        put(item, tag)
    ds.add_new(CARRIER, "SQ", Sequence([item]))
    clean = deidentify(ds)
    for holder in (clean, clean[CARRIER].value[0]):
        assert not [tag_text(t) for t in dates if t in holder]
        assert {str(holder[t].value) for t in names} == {"ANONYMOUS"}
    assert find_identifying_attributes(clean) == []
    for tag in dates + names:
        put(clean[CARRIER].value[0], tag)
        found = find_identifying_attributes(clean)
        assert any(tag_text(tag) in entry for entry in found), tag_text(tag)
        del clean[CARRIER].value[0][tag]


def test_vr_rule_removes_free_text_in_private_and_unknown_attributes(shared_data):
    ds = pydicom.dcmread(_dicom_files(shared_data)[0])
    unknown_text, unknown_number = 0x0010FFF1, 0x0010FFF2
    assert not dictionary_has_tag(unknown_text) and not dictionary_has_tag(unknown_number)
    ds.add_new(unknown_text, "LO", "DOE JOHN")
    ds.add_new(unknown_number, "US", 7)
    block = ds.private_block(0x0011, "HOSPITAL PACS", create=True)
    block.add_new(0x01, "LO", "MRN123456")
    block.add_new(0x02, "UT", "Doe John, admitted 2024-03-15")
    block.add_new(0x03, "DA", "20240315")
    block.add_new(0x04, "US", 12)
    kept = deidentify(ds, keep_private=True)
    assert unknown_text not in kept and kept[unknown_number].value == 7
    private = {int(e.tag) & 0xFF: e.value for e in kept if e.tag.is_private and not e.tag.is_private_creator}
    assert private == {0x04: 12}  # text and date gone, the number and the private creator kept
    found = find_identifying_attributes(kept)
    assert any("private attribute" in entry for entry in found)  # still refused for sharing
    clean = deidentify(ds)
    assert unknown_text not in clean and not any(e.tag.is_private for e in clean)
    assert find_identifying_attributes(clean) == []
    clean.add_new(unknown_text, "LO", "DOE JOHN")
    assert find_identifying_attributes(clean) == [
        "(0010,FFF1) unknown attribute: must be removed (free text in a private or unknown attribute)"]


def test_deidentify_removes_everything_identifying(shared_data, tmp_path):
    for path in _dicom_files(shared_data):
        original = identifiable(path)
        assert len(find_identifying_attributes(original)) >= 10
        clean = deidentify(original, out_path=tmp_path / "clean.dcm", salt="test-salt")
        assert find_identifying_attributes(clean) == []
        for secret in SECRETS:
            assert not any(secret in value for value in all_values(clean)), secret
        assert original.PatientName == "Doe^Jane"  # the input is not modified
        assert clean.PatientName == "" and clean.PatientID == "" and clean.PatientBirthDate == ""
        assert "PatientAddress" not in clean and "InstitutionName" in clean and clean.InstitutionName == ""
        assert "SeriesDate" not in clean and "OtherPatientIDs" not in clean
        assert clean.AnatomicRegionSequence[0].PersonName == "ANONYMOUS"
        assert clean.AnatomicRegionSequence[0].CodeValue == "T-D3000"  # clinical content kept
        assert not any(element.tag.is_private for element in clean.iterall())
        assert clean.PatientIdentityRemoved == "YES" and "Annex E" in clean.DeidentificationMethod
        assert clean.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert clean.PixelData == original.PixelData
        assert clean.Modality == original.Modality and clean.PixelSpacing == original.PixelSpacing
        reread = pydicom.dcmread(tmp_path / "clean.dcm")
        assert reread.PixelData == original.PixelData
        assert reread.file_meta.MediaStorageSOPInstanceUID == reread.SOPInstanceUID
        assert_deidentified(tmp_path / "clean.dcm")
        assert_deidentified([clean, reread])


def test_uids_remapped_consistently_across_a_series(shared_data):
    path = _dicom_files(shared_data)[0]
    originals = []
    for i in range(3):
        ds = identifiable(path)
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SOPInstanceUID}.{i + 1}"
        ds.InstanceNumber = i + 1
        originals.append(ds)
    uid_map: dict[str, str] = {}
    clean = [deidentify(ds, uid_map=uid_map, salt="site-secret") for ds in originals]
    for attribute in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        new = {getattr(ds, attribute) for ds in clean}
        assert len(new) == 1 and getattr(originals[0], attribute) not in new
        assert uid_map[getattr(originals[0], attribute)] in new
    sops = [ds.SOPInstanceUID for ds in clean]
    assert len(set(sops)) == 3 and not set(sops) & {ds.SOPInstanceUID for ds in originals}
    for ds in clean:
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
            assert uid.startswith("2.25.") and len(uid) <= 64 and pydicom.uid.UID(uid).is_valid
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        # A reference inside a sequence follows the same map as the instance it points to.
        referenced = ds.AnatomicRegionSequence[0].ReferencedImageSequence[0].ReferencedSOPInstanceUID
        assert referenced == uid_map[pydicom.dcmread(path).SOPInstanceUID]
        assert ds.SOPClassUID == originals[0].SOPClassUID  # class UIDs are not identifying
    again = deidentify(originals[1], salt="site-secret")  # deterministic given the salt
    assert again.SOPInstanceUID == clean[1].SOPInstanceUID
    other = deidentify(originals[1], salt="another-secret")
    assert other.SOPInstanceUID != clean[1].SOPInstanceUID


def test_keep_private_option(shared_data):
    ds = identifiable(_dicom_files(shared_data)[0])
    kept = deidentify(ds, keep_private=True)
    assert any(element.tag.is_private for element in kept.iterall())
    assert any("private attribute" in entry for entry in find_identifying_attributes(kept))


def test_burned_in_annotation_is_refused_or_marked(shared_data):
    ds = identifiable(_dicom_files(shared_data)[1])
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(InputError, match="BurnedInAnnotation"):
        deidentify(ds)
    marked = deidentify(ds, burned_in="mark")
    assert marked.BurnedInAnnotation == "YES" and "NOT cleaned" in marked.DeidentificationMethod
    assert len(marked.DeidentificationMethod) <= 64
    assert find_identifying_attributes(marked) == [
        "(0028,0301) BurnedInAnnotation: burned-in annotation in the pixel data"
    ]
    with pytest.raises(InputError, match="burned-in"):
        assert_deidentified(marked)
    with pytest.raises(InputError, match="burned_in"):
        deidentify(ds, burned_in="ignore")


def test_assert_deidentified_lists_what_remains(shared_data):
    path = _dicom_files(shared_data)[0]
    with pytest.raises(InputError) as raised:
        assert_deidentified(path)  # the real file: a patient name/ID and original UIDs
    message = str(raised.value)
    assert path.name in message and "PatientName" in message and "PatientIdentityRemoved" in message
    with pytest.raises(InputError) as raised:
        assert_deidentified([deidentify(path), identifiable(path)])
    assert "dataset 0" not in str(raised.value) and "dataset 1" in str(raised.value)
    assert "PrivateCreator" in str(raised.value) or "private attribute" in str(raised.value)
    assert "AnatomicRegionSequence[0].(0040,A123) PersonName" in str(raised.value)
    with pytest.raises(InputError, match="does not exist"):
        deidentify(path.parent / "missing.dcm")
    with pytest.raises(InputError, match="expected a pydicom Dataset"):
        deidentify(42)
