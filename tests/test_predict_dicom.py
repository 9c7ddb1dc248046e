"""DICOM in, DICOM out through `medhub predict`: FLAIR + T1c crops of a real BraTS subject written as DICOM
series (one study per orientation case), predicted by the zoo's DeepMedic and Attention U-Net into a DICOM SEG
(auto format, series matched by SeriesDescription) and into NIfTI (--format nifti, series joined by commas): the
SEG read back on the source grid equals the NIfTI voxel for voxel; dciodvfy accepts it; it names the model, its
revision and the source series."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pydicom
import pytest
from brats_dicom import CASES, brats_crop, dicom3tools, errors, oriented
from pydicom.uid import generate_uid

from medhub.auto import MedModel
from medhub.commands.predict import main
from medhub.io import read_dicom_seg, read_nifti, write_dicom_series
from medhub.predict.dicom_output import model_identity
from medhub.zoo.local import find as find_in_zoo

pytestmark = pytest.mark.shared_data
MODELS = ["medhub/attention-unet-brats", "medhub/deepmedic-brats"]
CHANNELS = (("Flair_subtrMeanDivStd", "AX FLAIR", "s1"), ("T1c_subtrMeanDivStd", "T1 +C", "s2"))


def write_study(shared_data, folder, case, descriptions=("AX FLAIR", "T1 +C")) -> list:
    """The FLAIR and T1c crops of `case` as two series of one study in `folder`/s1, s2 (named neutrally: only the
    SeriesDescription tells the channels apart)."""
    study, frame = generate_uid(), generate_uid()
    for (name, _, sub), description in zip(CHANNELS, descriptions):
        write_dicom_series(oriented(brats_crop(shared_data, name), case), folder / sub, series_description=description,
                           study_instance_uid=study, frame_of_reference_uid=frame, patient_id="BRATS-0003",
                           **CASES[case][1])
    return [folder / sub for *_, sub in CHANNELS[:len(descriptions)]]


@pytest.fixture(scope="module")
def studies(shared_data, tmp_path_factory) -> tuple:
    """(root, case -> [FLAIR series, T1c series], case -> the crop's shape on the series grid): one study per case."""
    root = tmp_path_factory.mktemp("studies")
    series = {case: write_study(shared_data, root / case, case) for case in CASES}
    shapes = {case: oriented(brats_crop(shared_data, "OTMultiClass"), case).shape for case in CASES}
    return root, series, shapes


@pytest.fixture(scope="module", params=[MODELS[0], pytest.param(MODELS[1], marks=pytest.mark.slow)])
def predicted(request, studies, tmp_path_factory) -> tuple:
    """(model id, SEG folder, NIfTI folder): the model run once per format over all the cases - the studies root
    (auto: SEGs, series matched by description) and the series joined by commas (--format nifti)."""
    model, (root, series, _) = request.param, studies
    seg_dir, nifti_dir = tmp_path_factory.mktemp("seg"), tmp_path_factory.mktemp("nifti")
    assert main([model, str(root), "--out", str(seg_dir), "--no-progress"]) == 0
    joined = [f"{flair},{t1c}" for flair, t1c in series.values()]
    assert main([model, *joined, "--out", str(nifti_dir), "--format", "nifti", "--no-progress"]) == 0
    return model, seg_dir, nifti_dir


@pytest.mark.parametrize("case", list(CASES))
def test_predicted_seg_equals_the_nifti_output_voxel_for_voxel(studies, predicted, case):
    (root, _, shapes), (_, seg_dir, nifti_dir) = studies, predicted
    assert sorted(p.name for p in seg_dir.iterdir() if not p.name.startswith((".medhub", "medhub-manifest"))) == \
        sorted(f"{c}_seg.dcm" for c in CASES)
    nifti = read_nifti(nifti_dir / f"{case}_seg.nii.gz")
    seg = read_dicom_seg(seg_dir / f"{case}_seg.dcm", root / case / "s1")
    assert seg.shape == nifti.shape == shapes[case]
    assert np.allclose(seg.affine, nifti.affine, atol=1e-4)
    assert int((seg.array != nifti.array).sum()) == 0
    assert len(np.unique(nifti.array)) >= 3  # a real prediction: background and at least two tumour labels


def test_predicted_seg_passes_dciodvfy_and_names_model_revision_and_source(studies, predicted):
    (root, _, _), (model, seg_dir, _) = studies, predicted
    seg_path = seg_dir / "oblique_seg.dcm"
    assert errors(dicom3tools("dciodvfy", seg_path)) == []
    # patient, study and frame of reference consistent across the FLAIR series and its SEG
    assert dicom3tools("dcentvfy", *sorted((root / "oblique" / "s1").iterdir()), seg_path) == []
    seg = pydicom.dcmread(seg_path)
    flair = pydicom.dcmread(sorted((root / "oblique" / "s1").iterdir())[0], stop_before_pixels=True)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == flair.SeriesInstanceUID
    assert (seg.StudyInstanceUID, seg.FrameOfReferenceUID, seg.PatientID) == (
        flair.StudyInstanceUID, flair.FrameOfReferenceUID, "BRATS-0003")
    assert "research use only" in seg.SeriesDescription
    folder, _ = find_in_zoo(model.split("/")[1])
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["necrosis", "edema", "non-enhancing", "enhancing"]
    for segment in seg.SegmentSequence:
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == (model, f"sha256:{digest}")
        assert f"model_id={model}" in algorithm.AlgorithmParameters


def test_study_folder_with_ambiguous_or_missing_series_names_what_it_found(shared_data, tmp_path, capsys):
    write_study(shared_data, tmp_path / "two_flairs", "axial", ("AX FLAIR", "FLAIR repeat"))
    write_study(shared_data, tmp_path / "no_t1c", "axial", ("AX FLAIR",))
    rc = main(["medhub/attention-unet-brats", str(tmp_path), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "2 series for channel 'flair', no series for channel 't1c'" in err
    assert "s1: 'AX FLAIR'; s2: 'FLAIR repeat'" in err
    assert f"{tmp_path / 'no_t1c'}: no series for channel 't1c'" in err
    assert "Pass the series joined by commas in the order ['flair', 't1c']" in err


def test_dicom_seg_needs_dicom_series_and_a_3d_segmenter(shared_data, tmp_path, capsys):
    subject = shared_data / "brats2015-examples" / "brats_2013_pat0003_1"
    flair, t1c = subject / "Flair_subtrMeanDivStd.nii.gz", subject / "T1c_subtrMeanDivStd.nii.gz"
    rc = main(["medhub/attention-unet-brats", f"{flair},{t1c}", "--out", str(tmp_path), "--format", "dicom-seg",
               "--no-progress"])
    assert rc == 1 and "--format dicom-seg needs DICOM series folders as input" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name != ".medhub-predict.lock"] == []  # refused before inference
    rc = main(["medhub/unet-isbi2012", str(flair), "--out", str(tmp_path), "--format", "dicom-seg"])
    assert rc == 2 and "DICOM SEG output is for 3D segmenters" in capsys.readouterr().err


def test_a_hub_snapshot_is_identified_by_its_commit(tmp_path):
    """Weights from the Hub cache (snapshots/<commit>/) are named by that commit, not by a hash of the file."""
    zoo, _ = find_in_zoo("attention-unet-brats")
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "models--medhub--attention-unet-brats" / "snapshots" / commit
    shutil.copytree(zoo, snapshot)
    assert model_identity(MedModel.from_pretrained(snapshot)) == (commit, commit)
    assert model_identity(MedModel.from_pretrained(zoo))[1].startswith("sha256:")
