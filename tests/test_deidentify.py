"""medhub.io.deidentify on the real chest radiograph DICOM files, with identifying attributes added."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medhub.errors import InputError
from medhub.io.deidentify import (
    BASIC_PROFILE_TABLE,
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


def test_profile_table_is_well_formed():
    assert len(BASIC_PROFILE_TABLE) >= 100
    for tag, keyword, action in BASIC_PROFILE_TABLE:
        assert keyword_for_tag(tag) == keyword, hex(tag)
        assert set(action.split("/")) <= {"X", "Z", "D", "U", "U*"}, keyword


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
