"""Write a 3-D volume (or a NIfTI file) as a single-frame DICOM MR or CT series.

Why: DICOM SEG output has to be checked against real DICOM series, and medhub's shared data ships NIfTI
only; users also need it to turn a NIfTI into something a PACS or OHIF shows. Public API:

    write_dicom_series(volume_or_nifti_path, out_dir, *, modality="MR", ...) -> list[Path]

Geometry (the inverse of `read_dicom_series`): one file per slice along the volume's third array axis
(k); the frame of slice k is `array[:, :, k].T`, i.e. rows follow the second array axis (j) and columns
the first (i). With the RAS+ affine A, ImageOrientationPatient is (A[:, 0] / |A[:, 0]|, A[:, 1] / |A[:, 1]|)
and ImagePositionPatient of slice k is A @ [0, 0, k, 1], both with x and y negated (DICOM is LPS+);
PixelSpacing is (|A[:, 1]|, |A[:, 0]|) = (between rows, between columns). Reading the files back with
`read_dicom_series` gives the same array (within the rescale quantisation below) and the same affine when
the affine is right-handed (det > 0: canonical RAS, LPS, axial/coronal/sagittal as scanners store them). A
left-handed affine (e.g. NIfTI "LAS") puts slice k+1 *against* DICOM's normal (row x column direction),
along which readers order slices: the same voxels come back at the same world positions with the third
axis reversed.

Intensities: integer-valued data within int16 are stored exactly (RescaleSlope 1, RescaleIntercept 0);
anything else (z-scored MR with negative values) is stored as uint16 with RescaleIntercept = minimum and
RescaleSlope = range / 65000, both exactly as written in the Decimal String, so a read-back differs by at
most RescaleSlope / 2.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import format_number_as_ds

from ..errors import InputError
from .dicom import LPS_TO_RAS
from .nifti import read_nifti
from .volume import Volume

SOP_CLASSES = {"MR": MRImageStorage, "CT": CTImageStorage}
LO_MAX = 64  # Long String (LO): SeriesDescription, PatientID, ...
QUANTISATION_LEVELS = 65000  # below 65535: DS rounding of slope/intercept can never push a value past uint16


def write_dicom_series(volume_or_nifti_path: Volume | str | Path, out_dir: str | Path, *, modality: str = "MR",
                       series_description: str = "medhub series written from a volume",
                       patient_id: str = "ANONYMOUS", patient_name: str = "Synthetic^Medhub",
                       study_instance_uid: str | None = None, frame_of_reference_uid: str | None = None,
                       series_number: int = 1, oblique_degrees: tuple[float, float, float] = (0.0, 0.0, 0.0),
                       reverse_order: bool = False, shuffle: bool = False, seed: int = 0) -> list[Path]:
    """Write `volume_or_nifti_path` as one DICOM file per slice in `out_dir` (created); returns the paths in
    slice order k = 0, 1, ... (see the module docstring for the geometry and the intensity encoding).

    modality: "MR" (MR Image Storage) or "CT" (CT Image Storage; values are taken as Hounsfield units).
    study_instance_uid / frame_of_reference_uid: pass the same ones to put several series of one subject
        (FLAIR and T1c) in one study and one patient coordinate system; new UIDs otherwise.
    oblique_degrees: rotations about the world R, A and S axes (applied in that order, about the volume's
        centre) of the volume's grid: the voxels stay as they are, the acquisition becomes oblique.
    reverse_order: InstanceNumber (and file names) count from the last slice down to the first.
    shuffle: file names in a random order (seeded by `seed`) unrelated to position or InstanceNumber.
    """
    volume = volume_or_nifti_path if isinstance(volume_or_nifti_path, Volume) else read_nifti(volume_or_nifti_path)
    name = volume.source or "volume"
    if modality not in SOP_CLASSES:
        raise InputError(f"write_dicom_series({name}): modality {modality!r}; expected one of {sorted(SOP_CLASSES)}")
    check_long_strings(f"write_dicom_series({name})", series_description=series_description, patient_id=patient_id)
    affine = _rotated(volume, oblique_degrees)
    lps = np.linalg.inv(LPS_TO_RAS) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    if abs(float(row_dir @ col_dir)) > 1e-6:
        raise InputError(f"{name}: the affine's first two axes are not orthogonal (cosine {row_dir @ col_dir:.2e}); "
                         "DICOM rows and columns must be perpendicular")
    normal = np.cross(row_dir, col_dir)
    slope, intercept, stored = _encode(volume.array, name)

    common = _series_header(modality, series_description, patient_id, patient_name, series_number,
                            study_instance_uid or generate_uid(), frame_of_reference_uid or generate_uid())
    common.ImageOrientationPatient = [format_number_as_ds(float(v)) for v in (*row_dir, *col_dir)]
    common.PixelSpacing = [format_number_as_ds(float(spacing[1])), format_number_as_ds(float(spacing[0]))]
    common.SliceThickness = common.SpacingBetweenSlices = format_number_as_ds(float(spacing[2]))
    if modality == "CT" or (slope, intercept) != ("1", "0"):  # the MR IOD has no Modality LUT: only when needed
        common.RescaleSlope, common.RescaleIntercept = slope, intercept
    common.WindowCenter = format_number_as_ds(float(volume.array.min() + volume.array.max()) / 2)
    common.WindowWidth = format_number_as_ds(max(float(volume.array.max() - volume.array.min()), 1.0))
    common.Rows, common.Columns = volume.shape[1], volume.shape[0]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n = volume.shape[2]
    names = list(range(1, n + 1))
    if shuffle:
        random.Random(seed).shuffle(names)
    paths = []
    for k in range(n):
        instance = n - k if reverse_order else k + 1
        position = (lps @ [0.0, 0.0, k, 1.0])[:3]
        ds = _slice(common, instance, position, float(position @ normal), stored[:, :, k].T)
        path = out_dir / f"IM{names[instance - 1]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def check_long_strings(where: str, **values: str) -> None:
    """InputError for a value longer than DICOM's Long String (LO) allows, rather than a truncated one."""
    for field_name, value in values.items():
        if len(value) > LO_MAX:
            raise InputError(f"{where}: {field_name} has {len(value)} characters; DICOM allows {LO_MAX} (VR LO)")


def _rotated(volume: Volume, degrees: tuple[float, float, float]) -> np.ndarray:
    """The volume's affine rotated about world R, then A, then S by `degrees`, about the volume's centre."""
    rotation = np.eye(4)
    for axis, angle in enumerate(np.radians(np.asarray(degrees, dtype=float))):
        c, s = np.cos(angle), np.sin(angle)
        a, b = (axis + 1) % 3, (axis + 2) % 3  # right-handed rotation about `axis`
        about = np.eye(4)
        about[[a, a, b, b], [a, b, a, b]] = c, -s, s, c
        rotation = about @ rotation
    centre = volume.affine @ [*(np.asarray(volume.shape) - 1) / 2.0, 1.0]
    to_centre, back = np.eye(4), np.eye(4)
    to_centre[:3, 3], back[:3, 3] = -centre[:3], centre[:3]
    return back @ rotation @ to_centre @ volume.affine


def _encode(array: np.ndarray, name: str) -> tuple[str, str, np.ndarray]:
    """(RescaleSlope, RescaleIntercept as DS strings, stored int16/uint16 array): see the module docstring."""
    if not np.isfinite(array).all():
        raise InputError(f"{name}: {int((~np.isfinite(array)).sum())} non-finite voxel(s); DICOM stores finite numbers")
    low, high = float(array.min()), float(array.max())
    if np.array_equal(array, np.round(array)) and -32768 <= low and high <= 32767:
        return "1", "0", array.astype(np.int16)
    intercept = format_number_as_ds(low)
    slope = format_number_as_ds(max(high - low, 1e-6) / QUANTISATION_LEVELS)
    stored = np.round((array.astype(np.float64) - float(intercept)) / float(slope))
    return slope, intercept, np.clip(stored, 0, 65535).astype(np.uint16)


def _series_header(modality: str, description: str, patient_id: str, patient_name: str, series_number: int,
                   study_uid: str, frame_of_reference_uid: str) -> Dataset:
    """The attributes every slice of the series shares (Patient, Study, Series, Frame of Reference, Equipment,
    Image Pixel and the modality's image module)."""
    ds = Dataset()
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.Modality = modality
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "", ""
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = study_uid, "1", ""
    ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = generate_uid(), series_number, description
    ds.Laterality = ds.PatientPosition = ""  # unknown for a volume read from a file (Type 2C: empty is allowed)
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_reference_uid, ""
    ds.Manufacturer = "medhub"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if modality == "CT" else "OTHER"]  # CT: not a localizer
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    if modality == "MR":
        ds.ScanningSequence, ds.SequenceVariant = "RM", "NONE"  # research mode: not acquired by a scanner
        ds.ScanOptions = ds.MRAcquisitionType = ds.EchoTime = ds.EchoTrainLength = ds.RepetitionTime = ""
    else:
        ds.KVP = ds.AcquisitionNumber = ""
    return ds


def _slice(common: Dataset, instance: int, position: np.ndarray, location: float, pixels: np.ndarray) -> Dataset:
    """One slice: the shared attributes plus its SOP Instance UID, InstanceNumber, position and pixels."""
    ds = Dataset()
    ds.update(common)
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [format_number_as_ds(float(v)) for v in position]
    ds.SliceLocation = format_number_as_ds(location)
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


__all__ = ["write_dicom_series"]
