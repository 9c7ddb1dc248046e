"""De-identification of DICOM files: PS3.15 Annex E, Basic Application Level Confidentiality Profile.

Why here: medhub pushes datasets and model cards to a hub; a DICOM header holds names, IDs, birth
dates, addresses, institutions and dates that must not leave the hospital. `deidentify` applies the
profile's action to each attribute of `BASIC_PROFILE` (the table of PS3.15 Table E.1-1, as data):

    X remove   Z empty (zero-length)   D dummy value   U replace the UID   K keep
    Compound actions ("X/Z", "Z/D", "X/Z/D", "X/D", "X/Z/U*") are resolved once, in `resolve_action`:
    Z wherever Z is allowed (keeps Type 2 attributes present without information), X for "X/D"
    (those attributes are Type 3 in the common image IODs), and for "X/Z/U*" sequences the items are
    kept and their UIDs replaced.

It also removes private attributes (odd groups) unless `keep_private`, removes overlay/curve groups
(60xx/50xx), recurses into every sequence, blanks any person name (PN) the table does not list
(a medhub addition: names hide in sequences), and records PatientIdentityRemoved = YES,
DeidentificationMethod and the code (DCM, 113100). UIDs map to "2.25.<int>" from a salted SHA-256,
consistently across files through a shared `uid_map`; pixel data are never touched.

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
from collections.abc import Iterable
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ..errors import InputError

# (tag, keyword, action as PS3.15 Table E.1-1 gives it for the Basic Profile)
BASIC_PROFILE_TABLE: tuple[tuple[int, str, str], ...] = (
    (0x00080014, "InstanceCreatorUID", "U"),
    (0x00080018, "SOPInstanceUID", "U"),
    (0x00080020, "StudyDate", "Z"),
    (0x00080021, "SeriesDate", "X/D"),
    (0x00080022, "AcquisitionDate", "X/Z"),
    (0x00080023, "ContentDate", "Z/D"),
    (0x00080024, "OverlayDate", "X"),
    (0x00080025, "CurveDate", "X"),
    (0x0008002A, "AcquisitionDateTime", "X/Z/D"),
    (0x00080030, "StudyTime", "Z"),
    (0x00080031, "SeriesTime", "X/D"),
    (0x00080032, "AcquisitionTime", "X/Z"),
    (0x00080033, "ContentTime", "Z/D"),
    (0x00080034, "OverlayTime", "X"),
    (0x00080035, "CurveTime", "X"),
    (0x00080050, "AccessionNumber", "Z"),
    (0x00080058, "FailedSOPInstanceUIDList", "U"),
    (0x00080080, "InstitutionName", "X/Z/D"),
    (0x00080081, "InstitutionAddress", "X"),
    (0x00080082, "InstitutionCodeSequence", "X/Z/D"),
    (0x00080090, "ReferringPhysicianName", "Z"),
    (0x00080092, "ReferringPhysicianAddress", "X"),
    (0x00080094, "ReferringPhysicianTelephoneNumbers", "X"),
    (0x00080096, "ReferringPhysicianIdentificationSequence", "X"),
    (0x0008009C, "ConsultingPhysicianName", "X"),
    (0x0008009D, "ConsultingPhysicianIdentificationSequence", "X"),
    (0x0008010D, "ContextGroupExtensionCreatorUID", "U"),
    (0x00080201, "TimezoneOffsetFromUTC", "X"),
    (0x00081010, "StationName", "X/Z/D"),
    (0x00081030, "StudyDescription", "X"),
    (0x0008103E, "SeriesDescription", "X"),
    (0x00081040, "InstitutionalDepartmentName", "X"),
    (0x00081048, "PhysiciansOfRecord", "X"),
    (0x00081049, "PhysiciansOfRecordIdentificationSequence", "X"),
    (0x00081050, "PerformingPhysicianName", "X"),
    (0x00081052, "PerformingPhysicianIdentificationSequence", "X"),
    (0x00081060, "NameOfPhysiciansReadingStudy", "X"),
    (0x00081062, "PhysiciansReadingStudyIdentificationSequence", "X"),
    (0x00081070, "OperatorsName", "X/Z/D"),
    (0x00081072, "OperatorIdentificationSequence", "X/D"),
    (0x00081080, "AdmittingDiagnosesDescription", "X"),
    (0x00081084, "AdmittingDiagnosesCodeSequence", "X"),
    (0x00081110, "ReferencedStudySequence", "X/Z"),
    (0x00081111, "ReferencedPerformedProcedureStepSequence", "X/Z/D"),
    (0x00081120, "ReferencedPatientSequence", "X"),
    (0x00081140, "ReferencedImageSequence", "X/Z/U*"),
    (0x00081155, "ReferencedSOPInstanceUID", "U"),
    (0x00081195, "TransactionUID", "U"),
    (0x00082111, "DerivationDescription", "X"),
    (0x00082112, "SourceImageSequence", "X/Z/U*"),
    (0x00083010, "IrradiationEventUID", "U"),
    (0x00084000, "IdentifyingComments", "X"),
    (0x00089123, "CreatorVersionUID", "U"),
    (0x00100010, "PatientName", "Z"),
    (0x00100020, "PatientID", "Z"),
    (0x00100021, "IssuerOfPatientID", "X"),
    (0x00100024, "IssuerOfPatientIDQualifiersSequence", "X"),
    (0x00100030, "PatientBirthDate", "Z"),
    (0x00100032, "PatientBirthTime", "X"),
    (0x00100033, "PatientBirthDateInAlternativeCalendar", "X"),
    (0x00100034, "PatientDeathDateInAlternativeCalendar", "X"),
    (0x00100040, "PatientSex", "Z"),
    (0x00100050, "PatientInsurancePlanCodeSequence", "X"),
    (0x00100101, "PatientPrimaryLanguageCodeSequence", "X"),
    (0x00100102, "PatientPrimaryLanguageModifierCodeSequence", "X"),
    (0x00101000, "OtherPatientIDs", "X"),
    (0x00101001, "OtherPatientNames", "X"),
    (0x00101002, "OtherPatientIDsSequence", "X"),
    (0x00101005, "PatientBirthName", "X"),
    (0x00101010, "PatientAge", "X"),
    (0x00101020, "PatientSize", "X"),
    (0x00101030, "PatientWeight", "X"),
    (0x00101040, "PatientAddress", "X"),
    (0x00101050, "InsurancePlanIdentification", "X"),
    (0x00101060, "PatientMotherBirthName", "X"),
    (0x00101080, "MilitaryRank", "X"),
    (0x00101081, "BranchOfService", "X"),
    (0x00101090, "MedicalRecordLocator", "X"),
    (0x00101100, "ReferencedPatientPhotoSequence", "X"),
    (0x00102000, "MedicalAlerts", "X"),
    (0x00102110, "Allergies", "X"),
    (0x00102150, "CountryOfResidence", "X"),
    (0x00102152, "RegionOfResidence", "X"),
    (0x00102154, "PatientTelephoneNumbers", "X"),
    (0x00102155, "PatientTelecomInformation", "X"),
    (0x00102160, "EthnicGroup", "X"),
    (0x00102180, "Occupation", "X"),
    (0x001021A0, "SmokingStatus", "X"),
    (0x001021B0, "AdditionalPatientHistory", "X"),
    (0x001021C0, "PregnancyStatus", "X"),
    (0x001021D0, "LastMenstrualDate", "X"),
    (0x001021F0, "PatientReligiousPreference", "X"),
    (0x00102203, "PatientSexNeutered", "X/Z"),
    (0x00102297, "ResponsiblePerson", "X"),
    (0x00102299, "ResponsibleOrganization", "X"),
    (0x00104000, "PatientComments", "X"),
    (0x00180010, "ContrastBolusAgent", "Z/D"),
    (0x00181000, "DeviceSerialNumber", "X/Z/D"),
    (0x00181002, "DeviceUID", "U"),
    (0x00181004, "PlateID", "X"),
    (0x00181005, "GeneratorID", "X"),
    (0x00181007, "CassetteID", "X"),
    (0x00181008, "GantryID", "X"),
    (0x00181030, "ProtocolName", "X/D"),
    (0x00181400, "AcquisitionDeviceProcessingDescription", "X/D"),
    (0x00184000, "AcquisitionComments", "X"),
    (0x0018700A, "DetectorID", "X/D"),
    (0x00189424, "AcquisitionProtocolDescription", "X"),
    (0x0018A003, "ContributionDescription", "X"),
    (0x0020000D, "StudyInstanceUID", "U"),
    (0x0020000E, "SeriesInstanceUID", "U"),
    (0x00200010, "StudyID", "Z"),
    (0x00200052, "FrameOfReferenceUID", "U"),
    (0x00200200, "SynchronizationFrameOfReferenceUID", "U"),
    (0x00203401, "ModifyingDeviceID", "X"),
    (0x00203404, "ModifyingDeviceManufacturer", "X"),
    (0x00203406, "ModifiedImageDescription", "X"),
    (0x00204000, "ImageComments", "X"),
    (0x00209158, "FrameComments", "X"),
    (0x00209161, "ConcatenationUID", "U"),
    (0x00209164, "DimensionOrganizationUID", "U"),
    (0x00281199, "PaletteColorLookupTableUID", "U"),
    (0x00281214, "LargePaletteColorLookupTableUID", "U"),
    (0x00284000, "ImagePresentationComments", "X"),
    (0x00321020, "ScheduledStudyLocation", "X"),
    (0x00321021, "ScheduledStudyLocationAETitle", "X"),
    (0x00321030, "ReasonForStudy", "X"),
    (0x00321032, "RequestingPhysician", "X"),
    (0x00321033, "RequestingService", "X"),
    (0x00321060, "RequestedProcedureDescription", "X/Z"),
    (0x00321070, "RequestedContrastAgent", "X"),
    (0x00324000, "StudyComments", "X"),
    (0x00380010, "AdmissionID", "X"),
    (0x00380011, "IssuerOfAdmissionID", "X"),
    (0x0038001E, "ScheduledPatientInstitutionResidence", "X"),
    (0x00380020, "AdmittingDate", "X"),
    (0x00380021, "AdmittingTime", "X"),
    (0x00380040, "DischargeDiagnosisDescription", "X"),
    (0x00380050, "SpecialNeeds", "X"),
    (0x00380060, "ServiceEpisodeID", "X"),
    (0x00380061, "IssuerOfServiceEpisodeID", "X"),
    (0x00380062, "ServiceEpisodeDescription", "X"),
    (0x00380300, "CurrentPatientLocation", "X"),
    (0x00380400, "PatientInstitutionResidence", "X"),
    (0x00380500, "PatientState", "X"),
    (0x00384000, "VisitComments", "X"),
    (0x00400001, "ScheduledStationAETitle", "X"),
    (0x00400002, "ScheduledProcedureStepStartDate", "X"),
    (0x00400003, "ScheduledProcedureStepStartTime", "X"),
    (0x00400004, "ScheduledProcedureStepEndDate", "X"),
    (0x00400005, "ScheduledProcedureStepEndTime", "X"),
    (0x00400006, "ScheduledPerformingPhysicianName", "X"),
    (0x00400007, "ScheduledProcedureStepDescription", "X"),
    (0x0040000B, "ScheduledPerformingPhysicianIdentificationSequence", "X"),
    (0x00400010, "ScheduledStationName", "X"),
    (0x00400011, "ScheduledProcedureStepLocation", "X"),
    (0x00400012, "PreMedication", "X"),
    (0x00400241, "PerformedStationAETitle", "X"),
    (0x00400242, "PerformedStationName", "X"),
    (0x00400243, "PerformedLocation", "X"),
    (0x00400244, "PerformedProcedureStepStartDate", "X"),
    (0x00400245, "PerformedProcedureStepStartTime", "X"),
    (0x00400253, "PerformedProcedureStepID", "X"),
    (0x00400254, "PerformedProcedureStepDescription", "X"),
    (0x00400275, "RequestAttributesSequence", "X"),
    (0x00400280, "CommentsOnThePerformedProcedureStep", "X"),
    (0x00400555, "AcquisitionContextSequence", "X"),
    (0x00401001, "RequestedProcedureID", "X"),
    (0x00401004, "PatientTransportArrangements", "X"),
    (0x00401005, "RequestedProcedureLocation", "X"),
    (0x00401010, "NamesOfIntendedRecipientsOfResults", "X"),
    (0x00401011, "IntendedRecipientsOfResultsIdentificationSequence", "X"),
    (0x00401101, "PersonIdentificationCodeSequence", "D"),
    (0x00401102, "PersonAddress", "X"),
    (0x00401103, "PersonTelephoneNumbers", "X"),
    (0x00401400, "RequestedProcedureComments", "X"),
    (0x00402001, "ReasonForTheImagingServiceRequest", "X"),
    (0x00402008, "OrderEnteredBy", "X"),
    (0x00402009, "OrderEntererLocation", "X"),
    (0x00402010, "OrderCallbackPhoneNumber", "X"),
    (0x00402016, "PlacerOrderNumberImagingServiceRequest", "Z"),
    (0x00402017, "FillerOrderNumberImagingServiceRequest", "Z"),
    (0x00402400, "ImagingServiceRequestComments", "X"),
    (0x00403001, "ConfidentialityConstraintOnPatientDataDescription", "X"),
    (0x00404023, "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID", "U"),
    (0x00404025, "ScheduledStationNameCodeSequence", "X"),
    (0x00404027, "ScheduledStationGeographicLocationCodeSequence", "X"),
    (0x00404028, "PerformedStationNameCodeSequence", "X"),
    (0x00404030, "PerformedStationGeographicLocationCodeSequence", "X"),
    (0x00404034, "ScheduledHumanPerformersSequence", "X"),
    (0x00404035, "ActualHumanPerformersSequence", "X"),
    (0x00404036, "HumanPerformerOrganization", "X"),
    (0x00404037, "HumanPerformerName", "X"),
    (0x0040A027, "VerifyingOrganization", "X"),
    (0x0040A073, "VerifyingObserverSequence", "D"),
    (0x0040A075, "VerifyingObserverName", "D"),
    (0x0040A078, "AuthorObserverSequence", "X"),
    (0x0040A07A, "ParticipantSequence", "X"),
    (0x0040A07C, "CustodialOrganizationSequence", "X"),
    (0x0040A088, "VerifyingObserverIdentificationCodeSequence", "Z"),
    (0x0040A123, "PersonName", "D"),
    (0x0040A124, "UID", "U"),
    (0x0040A730, "ContentSequence", "X"),
    (0x0040DB0C, "TemplateExtensionOrganizationUID", "U"),
    (0x0040DB0D, "TemplateExtensionCreatorUID", "U"),
    (0x00700001, "GraphicAnnotationSequence", "D"),
    (0x00700084, "ContentCreatorName", "Z"),
    (0x00700086, "ContentCreatorIdentificationCodeSequence", "X"),
    (0x0070031A, "FiducialUID", "U"),
    (0x00880140, "StorageMediaFileSetUID", "U"),
    (0x00880200, "IconImageSequence", "X"),
    (0x00880904, "TopicTitle", "X"),
    (0x00880906, "TopicSubject", "X"),
    (0x00880910, "TopicAuthor", "X"),
    (0x00880912, "TopicKeywords", "X"),
    (0x04000100, "DigitalSignatureUID", "X"),
    (0x04000402, "ReferencedDigitalSignatureSequence", "X"),
    (0x04000403, "ReferencedSOPInstanceMACSequence", "X"),
    (0x04000404, "MAC", "X"),
    (0x04000550, "ModifiedAttributesSequence", "X"),
    (0x04000561, "OriginalAttributesSequence", "X"),
    (0x20300020, "TextString", "X"),
    (0x30060024, "ReferencedFrameOfReferenceUID", "U"),
    (0x300600C2, "RelatedFrameOfReferenceUID", "U"),
    (0x300A0013, "DoseReferenceUID", "U"),
    (0x300E0008, "ReviewerName", "X/Z"),
    (0x40000010, "Arbitrary", "X"),
    (0x40004000, "TextComments", "X"),
    (0x40080042, "ResultsIDIssuer", "X"),
    (0x40080102, "InterpretationRecorder", "X"),
    (0x4008010A, "InterpretationTranscriber", "X"),
    (0x4008010B, "InterpretationText", "X"),
    (0x4008010C, "InterpretationAuthor", "X"),
    (0x40080111, "InterpretationApproverSequence", "X"),
    (0x40080114, "PhysicianApprovingInterpretation", "X"),
    (0x40080115, "InterpretationDiagnosisDescription", "X"),
    (0x40080118, "ResultsDistributionListSequence", "X"),
    (0x40080119, "DistributionName", "X"),
    (0x4008011A, "DistributionAddress", "X"),
    (0x40080202, "InterpretationIDIssuer", "X"),
    (0x40080300, "Impressions", "X"),
    (0x40084000, "ResultsComments", "X"),
    (0xFFFAFFFA, "DigitalSignaturesSequence", "X"),
    (0xFFFCFFFC, "DataSetTrailingPadding", "X"),
)


def resolve_action(action: str) -> str:
    """One of X, Z, D, U, U* for a Table E.1-1 action (see the module docstring for the choices)."""
    options = action.split("/")
    if "U*" in options:
        return "U*"
    if len(options) == 1:
        return action
    return "Z" if "Z" in options else "X"


BASIC_PROFILE: dict[int, tuple[str, str]] = {
    tag: (keyword, resolve_action(action)) for tag, keyword, action in BASIC_PROFILE_TABLE
}
# Dummy values (action D) by value representation.
DUMMY_VALUES = {
    "PN": "ANONYMOUS", "DA": "19000101", "TM": "000000.00", "DT": "19000101000000.000000",
    "AS": "000Y", "UI": "2.25.0", "IS": "0", "DS": "0",
}
DUMMY_TEXT = "ANONYMIZED"
DEIDENTIFICATION_METHOD = "PS3.15 Annex E Basic Profile, medhub"  # LO: at most 64 characters
BURNED_IN_NOTE = "; pixels NOT cleaned"  # burned-in annotation kept (burned_in="mark")
_PROCESS_SALT = secrets.token_hex(16)


def _is_overlay_or_curve(tag: int) -> bool:
    """Curve groups 50xx and overlay groups 60xx (even): the profile removes their data and comments,
    and an overlay can carry burned-in text, so the whole group goes."""
    group = tag >> 16
    return group % 2 == 0 and (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF)


def _is_private(tag: int) -> bool:
    return (tag >> 16) % 2 == 1


def replace_uid(uid: str, uid_map: dict[str, str], salt: str) -> str:
    """The new UID for `uid`: taken from / stored into `uid_map`; else 2.25.<128-bit salted SHA-256>."""
    uid = str(uid).strip()
    if uid not in uid_map:
        digest = hashlib.sha256(f"{salt}\x00{uid}".encode()).digest()
        uid_map[uid] = f"2.25.{int.from_bytes(digest[:16], 'big')}"
    return uid_map[uid]


def _dummy(element) -> object:
    if element.VR == "SQ":
        return Sequence([])
    return DUMMY_VALUES.get(element.VR, DUMMY_TEXT)


def _clean(ds: Dataset, uid_map: dict[str, str], salt: str, keep_private: bool) -> None:
    """Apply the profile to `ds` in place, recursing into every remaining sequence item."""
    for element in list(ds):
        tag = int(element.tag)
        if _is_private(tag):
            if not keep_private:
                del ds[tag]
            elif element.VR == "SQ":
                for item in element.value:
                    _clean(item, uid_map, salt, keep_private)
            continue
        if _is_overlay_or_curve(tag):
            del ds[tag]
            continue
        keyword, action = BASIC_PROFILE.get(tag, (None, "K"))
        if action == "X":
            del ds[tag]
        elif action == "Z":
            element.value = Sequence([]) if element.VR == "SQ" else ""
        elif action == "D":
            element.value = _dummy(element)
        elif action == "U" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            new = [replace_uid(v, uid_map, salt) for v in values]
            element.value = new if element.VM > 1 else new[0]
        elif element.VR == "PN" and element.value:
            element.value = DUMMY_VALUES["PN"]  # a name the table does not list: never keep it
        if tag in ds and ds[tag].VR == "SQ":
            for item in ds[tag].value:
                _clean(item, uid_map, salt, keep_private)


def _load(dataset_or_path) -> Dataset:
    if isinstance(dataset_or_path, Dataset):
        return dataset_or_path
    if isinstance(dataset_or_path, (str, Path)):
        path = Path(dataset_or_path)
        if not path.is_file():
            raise InputError(f"DICOM file {str(path)!r} does not exist; expected a path to a .dcm file")
        try:
            return pydicom.dcmread(path)
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
    salt = _PROCESS_SALT if salt is None else str(salt)
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
        ds.save_as(Path(out_path), enforce_file_format=file_meta is not None)
    return ds


def _describe(path: str, element) -> str:
    name = element.keyword or "private"
    return f"{path}{element.tag} {name}"


def _find(ds: Dataset, path: str, found: list[str]) -> None:
    for element in ds:
        tag = int(element.tag)
        where = _describe(path, element)
        keyword, action = BASIC_PROFILE.get(tag, (None, "K"))
        empty = element.value in (None, "", b"") or (element.VR == "SQ" and len(element.value) == 0)
        if _is_private(tag):
            found.append(f"{where}: private attribute")
        elif _is_overlay_or_curve(tag):
            found.append(f"{where}: overlay/curve data")
        elif action == "X":
            found.append(f"{where}: must be removed")
        elif action == "Z" and not empty:
            found.append(f"{where}: must be empty")
        elif action == "D" and element.VR != "SQ" and not empty and element.value != _dummy(element):
            found.append(f"{where}: must hold a dummy value")
        elif action == "K" and element.VR == "PN" and not empty and str(element.value) != DUMMY_VALUES["PN"]:
            found.append(f"{where}: person name")
        elif tag == 0x00280301 and str(element.value).upper() == "YES":
            found.append(f"{where}: burned-in annotation in the pixel data")
        if element.VR == "SQ":
            for i, item in enumerate(element.value):
                _find(item, f"{path}{element.keyword or element.tag}[{i}].", found)


def find_identifying_attributes(ds: Dataset) -> list[str]:
    """What in `ds` still identifies the patient under the Basic Profile (empty when clean).

    Each entry names the attribute path and why, e.g. "(0010,0010) PatientName: must be empty".
    UIDs cannot be told apart from replaced ones, so a dataset without PatientIdentityRemoved = YES
    is reported too. Only the header is checked; BurnedInAnnotation = YES is reported.
    """
    if not isinstance(ds, Dataset):
        raise InputError(f"got {type(ds).__name__}: expected a pydicom Dataset")
    found: list[str] = []
    _find(ds, "", found)
    if str(ds.get("PatientIdentityRemoved", "")).upper() != "YES":
        found.append("(0012,0062) PatientIdentityRemoved: not YES (UIDs may be the originals)")
    return found


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
