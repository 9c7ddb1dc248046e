"""Size and write time of a DICOM SEG of a whole BraTS label volume (240 x 240 x 155), and dciodvfy's verdict.

Not a test (timings depend on the machine): run it once and quote its output, e.g.
    PYTHONPATH=src python benchmarks/dicom_seg.py [../shared/data]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' BraTS-to-DICOM helpers
from brats_dicom import BRATS_NAMES, SUBJECT  # noqa: E402

from medhub.io import read_dicom_seg, read_nifti, write_dicom_seg, write_dicom_series  # noqa: E402


def main(data: Path) -> None:
    flair = read_nifti(data / SUBJECT / "Flair_subtrMeanDivStd.nii.gz")
    labels = read_nifti(data / SUBJECT / "OTMultiClass.nii.gz")
    grid = labels.array.astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        folder, seg = Path(tmp) / "flair", Path(tmp) / "seg.dcm"
        start = time.perf_counter()
        write_dicom_series(flair, folder, shuffle=True)
        series_s = time.perf_counter() - start
        start = time.perf_counter()
        write_dicom_seg(grid, folder, seg, segment_labels=BRATS_NAMES, model_id="medhub/deepmedic-brats")
        seg_s = time.perf_counter() - start
        start = time.perf_counter()
        back = read_dicom_seg(seg, folder)
        read_s = time.perf_counter() - start
        series_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"labels {grid.shape}, {int((grid > 0).sum())} labelled voxels; MR series: {series_mb:.1f} MB "
              f"written in {series_s:.2f} s")
        differ = int((back.array != grid).sum())
        print(f"SEG: {seg.stat().st_size / 1e6:.2f} MB, written in {seg_s:.2f} s (reading the series' headers "
              f"included), read back onto the series in {read_s:.2f} s, {differ} voxels differ")
        if shutil.which("dciodvfy"):
            run = subprocess.run(["dciodvfy", str(seg)], capture_output=True, text=True)
            print("dciodvfy:", (run.stdout + run.stderr).strip() or "(no output)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data")
