"""`medhub predict` on one whole BraTS subject written as DICOM (FLAIR + T1c series of one study): the DICOM SEG
it writes against its NIfTI output - SEG size, SEG write time, voxels differing, dciodvfy's verdict.

Not a test (timings depend on the machine): run it once and quote its output, e.g.
    PYTHONPATH=src python benchmarks/predict_dicom_seg.py [MODEL ...]      (default: both BraTS zoo models)
Data: ../shared/data (or $MEDHUB_DATA_DIR).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' BraTS-to-DICOM helpers
from brats_dicom import SUBJECT  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from medhub.auto import MedModel  # noqa: E402
from medhub.io import read_dicom_seg, read_nifti, write_dicom_series  # noqa: E402
from medhub.predict import predict_paths  # noqa: E402
from medhub.predict.cases import Case  # noqa: E402
from medhub.predict.dicom_output import write_label_volume  # noqa: E402

MODELS = ["medhub/attention-unet-brats", "medhub/deepmedic-brats"]


def main(data: Path, models: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        study, frame = generate_uid(), generate_uid()
        series = []
        for name, description in (("Flair_subtrMeanDivStd", "AX FLAIR"), ("T1c_subtrMeanDivStd", "T1 +C")):
            folder = Path(tmp) / "study" / description.replace(" ", "_").replace("+", "")
            write_dicom_series(data / SUBJECT / f"{name}.nii.gz", folder, series_description=description,
                               study_instance_uid=study, frame_of_reference_uid=frame, shuffle=True)
            series.append(folder)
        print(f"subject {SUBJECT}: {len(list(series[0].iterdir()))} slices per series")
        for model_id in models:
            model = MedModel.from_pretrained(model_id)
            seg_dir, nifti_dir = Path(tmp) / "seg", Path(tmp) / "nifti"
            start = time.perf_counter()
            report = predict_paths(model, [Path(tmp) / "study"], seg_dir, progress=False, overwrite=True)
            seg_run = time.perf_counter() - start
            start = time.perf_counter()
            report_nifti = predict_paths(model, [",".join(map(str, series))], nifti_dir, progress=False,
                                         overwrite=True, output_format="nifti")
            nifti_run = time.perf_counter() - start
            assert report.ok and report_nifti.ok, (report.failed, report_nifti.failed)
            seg_path, nifti_path = next(seg_dir.glob("*_seg.dcm")), next(nifti_dir.glob("*_seg.nii.gz"))
            nifti = read_nifti(nifti_path)
            start = time.perf_counter()  # the SEG alone, as predict writes it (series headers read included)
            write_label_volume(model, Case("study", series, "again"), nifti.array.astype("uint8"), nifti.affine,
                               Path(tmp) / "again_seg.dcm")
            write_s = time.perf_counter() - start
            back = read_dicom_seg(seg_path, series[0])
            differ = int((back.array != nifti.array).sum())
            print(f"{model_id}: predict -> SEG {seg_run:.1f} s, -> NIfTI {nifti_run:.1f} s; SEG "
                  f"{seg_path.stat().st_size / 1e6:.2f} MB ({int(back.header.NumberOfFrames)} frames) written in "
                  f"{write_s:.2f} s; NIfTI {nifti_path.stat().st_size / 1e6:.2f} MB; {int((nifti.array > 0).sum())} "
                  f"labelled voxels, {differ} of {nifti.array.size} voxels differ between SEG and NIfTI")
            if shutil.which("dciodvfy"):
                run = subprocess.run(["dciodvfy", str(seg_path)], capture_output=True, text=True)
                lines = (run.stdout + run.stderr).splitlines()
                print(f"  dciodvfy: {sum(x.startswith('Error') for x in lines)} errors, "
                      f"{sum(x.startswith('Warning') for x in lines)} warnings "
                      f"{[x for x in lines if x.startswith(('Error', 'Warning'))]}")


if __name__ == "__main__":
    env = os.environ.get("MEDHUB_DATA_DIR")
    main(Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data", sys.argv[1:] or MODELS)
