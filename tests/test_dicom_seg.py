"""medhub.io.write_dicom_seg / read_dicom_seg on series built from a real BraTS subject (FLAIR + its labels):
exact voxel agreement per orientation case, frame-to-instance references read with plain pydicom, the
metadata a PACS needs, and dicom3tools' verdict."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from brats_dicom import BRATS_NAMES, CASES, brats_crop, dicom3tools, errors, oriented

from medhub import __version__
from medhub.errors import InputError
from medhub.io import Volume, read_dicom_seg, read_dicom_series, write_dicom_seg, write_dicom_series

pytestmark = pytest.mark.shared_data
MODEL = {"model_id": "medhub/deepmedic-brats", "model_revision": "0123abcd"}


@pytest.fixture(scope="module")
def written(shared_data, tmp_path_factory) -> dict:
    """case -> (source folder, SEG path, labels on the source grid), written once for the module."""
    image, labels = brats_crop(shared_data, "Flair_subtrMeanDivStd"), brats_crop(shared_data, "OTMultiClass")
    root = tmp_path_factory.mktemp("seg")
    out = {}
    for case, (_, options) in CASES.items():
        folder = root / case
        write_dicom_series(oriented(image, case), folder, patient_id="BRATS-0003", patient_name="Brats^Pat0003",
                           **options)
        # the labels were drawn on the same voxels: on the series' grid as read_dicom_series gives it
        grid = oriented(labels, case).array.astype(np.uint8)
        out[case] = (folder, write_dicom_seg(grid, folder, root / f"{case}.dcm", segment_labels=BRATS_NAMES, **MODEL),
                     grid)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_seg_read_back_on_the_source_grid_is_voxel_exact(written, case):
    folder, seg_path, labels = written[case]
    source = read_dicom_series(folder)
    back = read_dicom_seg(seg_path, folder)
    assert back.shape == labels.shape and np.array_equal(back.affine, source.affine)
    assert int((back.array != labels).sum()) == 0
    assert np.unique(back.array).tolist() == [0, 1, 2, 3, 4]
    # without the source: the SEG's own grid (slices from the first to the last with a label) lies on the
    # source grid; mapped there, its voxels are the labels again
    own = read_dicom_seg(seg_path)
    to_source = np.linalg.inv(source.affine) @ own.affine
    assert np.allclose(to_source, np.round(to_source), atol=1e-6)
    index = np.rint(to_source[:3, :3] @ np.indices(own.shape).reshape(3, -1) + to_source[:3, 3:]).astype(int)
    assert np.array_equal(own.array.reshape(-1), labels[tuple(index)])
    assert own.axcodes == source.axcodes


@pytest.mark.parametrize("case", ["oblique", "shuffled", "sagittal"])
def test_each_frame_references_its_source_instance_and_holds_its_slice(written, case):
    """Plain pydicom, no medhub reader: frame f of segment s referencing instance I holds labels[:, :, k].T == s,
    k being I's place along the slice normal."""
    folder, seg_path, labels = written[case]
    normal_order = {}
    for path in folder.iterdir():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float).reshape(2, 3)
        normal_order[ds.SOPInstanceUID] = float(np.cross(iop[0], iop[1]) @ np.asarray(ds.ImagePositionPatient, float))
    slice_of = {uid: k for k, uid in enumerate(sorted(normal_order, key=normal_order.get))}
    seg = pydicom.dcmread(seg_path)
    frames = seg.pixel_array
    seen = set()
    for f, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        segment = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = slice_of[uid]
        assert np.array_equal(frames[f], (labels[:, :, k] == segment).T), (f, segment, k)
        seen.add((k, segment))
    nonempty = {(k, s) for k in range(labels.shape[2]) for s in BRATS_NAMES if (labels[:, :, k] == s).any()}
    assert seen == nonempty and seg.NumberOfFrames == len(nonempty)  # empty frames omitted, none missing


def test_seg_carries_references_identity_algorithm_and_codes(written):
    folder, seg_path, _ = written["axial"]
    source = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]
    seg = pydicom.dcmread(seg_path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and seg.SegmentationType == "BINARY"
    assert "research use only" in seg.SeriesDescription
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert seg[keyword].value == source[0][keyword].value, keyword
    assert seg.PatientID == "BRATS-0003" and seg.SeriesInstanceUID != source[0].SeriesInstanceUID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == source[0].SeriesInstanceUID
    instances = {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence}
    assert instances == {ds.SOPInstanceUID for ds in source}
    assert seg.SoftwareVersions == __version__ and seg.Manufacturer == "medhub"
    expected = {  # DICOM CID 7168 (brain lesion segmentation types); category SCT "Morphologically Abnormal Structure"
        "necrosis": ("6574001", "SCT", "Necrosis"), "edema": ("79654002", "SCT", "Edema"),
        "non-enhancing": ("C81175", "NCIt", "Non-Enhancing Lesion"),
        "enhancing": ("C113842", "NCIt", "Enhancing Lesion"),
    }
    assert [int(s.SegmentNumber) for s in seg.SegmentSequence] == [1, 2, 3, 4]
    for segment in seg.SegmentSequence:
        assert segment.SegmentLabel == BRATS_NAMES[int(segment.SegmentNumber)]
        kind, category = segment.SegmentedPropertyTypeCodeSequence[0], segment.SegmentedPropertyCategoryCodeSequence[0]
        assert (kind.CodeValue, kind.CodingSchemeDesignator, kind.CodeMeaning) == expected[segment.SegmentLabel]
        assert (category.CodeValue, category.CodingSchemeDesignator) == ("49755003", "SCT")
        assert segment.SegmentAlgorithmType == "AUTOMATIC" and segment.SegmentAlgorithmName == "medhub/deepmedic-brats"
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("medhub/deepmedic-brats", "0123abcd")
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
        for part in ("model_id=medhub/deepmedic-brats", "model_revision=0123abcd", f"medhub_version={__version__}"):
            assert part in algorithm.AlgorithmParameters


def test_dicom3tools_accept_the_seg_and_its_series(written):
    folder, seg_path, _ = written["oblique"]
    report = dicom3tools("dciodvfy", seg_path)
    assert errors(report) == []
    # only the study date/time, left empty in the synthetic source (Type 2) and copied as they are
    missing = "Warning - Missing attribute or value that would be needed to build DICOMDIR - "
    assert sorted(report) == [missing + "Study Date", missing + "Study Time"]
    # dcentvfy: patient, study and frame of reference consistent across the series and its SEG
    assert dicom3tools("dcentvfy", *sorted(folder.iterdir()), seg_path) == []


def test_generic_tissue_code_override_and_all_background(written, tmp_path):
    folder, _, labels = written["coronal"]
    tissue = write_dicom_seg(labels == 2, folder, tmp_path / "tissue.dcm",  # a boolean mask is one segment
                             segment_labels={1: "white matter lesion"}, model_id="someone/model")
    segment = pydicom.dcmread(tissue, stop_before_pixels=True).SegmentSequence[0]
    assert segment.SegmentedPropertyTypeCodeSequence[0].CodeValue == "85756007"  # SCT Tissue
    assert segment.SegmentedPropertyCategoryCodeSequence[0].CodeMeaning == "Tissue"
    algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmVersion == f"medhub {__version__}"  # no revision given
    from pydicom.sr.codedict import codes

    custom = write_dicom_seg((labels == 2).astype(np.uint8), folder, tmp_path / "custom.dcm",
                             segment_labels={1: "oedema"}, model_id="m",
                             segment_properties={1: (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion)})
    assert pydicom.dcmread(custom).SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    empty = write_dicom_seg(np.zeros_like(labels), folder, tmp_path / "empty.dcm", segment_labels=BRATS_NAMES, **MODEL)
    assert not read_dicom_seg(empty, folder).array.any()


def test_errors_name_the_input_and_what_was_expected(written, tmp_path):
    folder, seg_path, labels = written["axial"]
    kwargs = {"segment_labels": BRATS_NAMES, **MODEL}
    with pytest.raises(InputError, match=r"labels of shape \(36, 44, 19\).*reads as \(36, 44, 20\)"):
        write_dicom_seg(labels[:, :, 1:], folder, tmp_path / "x.dcm", **kwargs)
    source = read_dicom_series(folder)
    with pytest.raises(InputError, match="labels' affine .* is not the source series'"):
        write_dicom_seg(Volume(labels, source.affine @ np.diag([1, 1, -1, 1.0]), source.spacing), folder,
                        tmp_path / "x.dcm", **kwargs)
    with pytest.raises(InputError, match=r"label values \[5\] in the labels are not in segment_labels"):
        write_dicom_seg(np.where(labels == 4, 5, labels), folder, tmp_path / "x.dcm", **kwargs)
    with pytest.raises(InputError, match=r"keys \[1, 2, 4\]; expected the label values 1..N"):
        write_dicom_seg(labels, folder, tmp_path / "x.dcm", segment_labels={1: "a", 2: "b", 4: "d"}, model_id="m")
    with pytest.raises(InputError, match=r"segment_labels\[2\] has 70 characters; DICOM allows 64"):
        long_name = {**BRATS_NAMES, 2: "e" * 70}
        write_dicom_seg(labels, folder, tmp_path / "x.dcm", **{**kwargs, "segment_labels": long_name})
    with pytest.raises(InputError, match=r"segment_properties for labels \[7\]"):
        write_dicom_seg(labels, folder, tmp_path / "x.dcm", segment_properties={7: ()}, **kwargs)
    with pytest.raises(InputError, match="must contain 'research use only'"):
        write_dicom_seg(labels, folder, tmp_path / "x.dcm", series_description="tumour", **kwargs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no DICOM files found"):
        write_dicom_seg(labels, tmp_path / "empty", tmp_path / "x.dcm", **kwargs)
    (tmp_path / "notes.txt").write_text("not DICOM")
    with pytest.raises(InputError, match="notes.txt: not a readable DICOM Segmentation"):
        read_dicom_seg(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="IM0001.dcm: not a readable DICOM Segmentation"):
        read_dicom_seg(folder / "IM0001.dcm")  # a DICOM MR image, not a SEG
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("not DICOM")
    with pytest.raises(InputError, match="notes.txt: not a readable DICOM file"):
        read_dicom_seg(seg_path, mixed)
    other_folder = written["coronal"][0]  # another series, its own frame of reference
    with pytest.raises(InputError, match="FrameOfReferenceUID .* differs from the source series'"):
        read_dicom_seg(seg_path, other_folder)


def test_a_shared_frame_of_reference_resamples_onto_another_grid(shared_data, tmp_path):
    """FLAIR and T1c of one subject in one study and frame of reference, the T1c stored coronally: a SEG of
    the axial FLAIR read onto the T1c series gives the labels in the T1c's voxel order."""
    labels = brats_crop(shared_data, "OTMultiClass")
    frame, study = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    write_dicom_series(brats_crop(shared_data, "Flair_subtrMeanDivStd"), tmp_path / "flair",
                       frame_of_reference_uid=frame, study_instance_uid=study)
    write_dicom_series(oriented(brats_crop(shared_data, "T1c_subtrMeanDivStd"), "coronal"), tmp_path / "t1c",
                       frame_of_reference_uid=frame, study_instance_uid=study)
    seg = write_dicom_seg(labels.array.astype(np.uint8), tmp_path / "flair", tmp_path / "seg.dcm",
                          segment_labels=BRATS_NAMES, **MODEL)
    on_t1c = read_dicom_seg(seg, tmp_path / "t1c")
    assert np.array_equal(on_t1c.array, oriented(labels, "coronal").array.astype(np.uint8))
