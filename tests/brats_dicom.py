"""Small DICOM test cases built from a real BraTS subject, and the dicom3tools validators that judge them.

The crop (36 x 44 x 20 voxels, distinct sizes so a swapped axis cannot pass) holds all four BraTS labels;
necrosis ends after 9 of its 20 slices, so the SEG has to omit empty frames of one segment only.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from medhub.io import Volume, read_nifti, reorient

SUBJECT = "brats2015-examples/brats_2013_pat0003_1"
CROP = (slice(90, 126), slice(120, 164), slice(84, 104))
BRATS_NAMES = {1: "necrosis", 2: "edema", 3: "non-enhancing", 4: "enhancing"}
# name -> (axis codes the crop is reoriented to, write_dicom_series options). All right-handed, as scanners
# store them: LIP is a coronal stack (rows L, columns I, slices towards P), PIR a sagittal one.
CASES = {
    "axial": ("LPS", {}),
    "coronal": ("LIP", {}),
    "sagittal": ("PIR", {}),
    "oblique": ("LPS", {"oblique_degrees": (17.0, -11.0, 23.0)}),
    "reversed": ("LPS", {"reverse_order": True}),
    "shuffled": ("LIP", {"shuffle": True, "oblique_degrees": (0.0, 9.0, 0.0)}),
}


def brats_crop(shared_data: Path, name: str) -> Volume:
    """`name` (e.g. "Flair_subtrMeanDivStd" or "OTMultiClass") of the test subject, cropped to CROP."""
    volume = read_nifti(shared_data / SUBJECT / f"{name}.nii.gz")
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in CROP]
    return Volume(volume.array[CROP].copy(), volume.affine @ shift, volume.spacing, f"{name} crop")


def oriented(volume: Volume, case: str) -> Volume:
    return reorient(volume, CASES[case][0])


def dicom3tools(tool: str, *paths: Path) -> list[str]:
    """The 'Error' and 'Warning' lines `tool` (dciodvfy, dcentvfy) prints for `paths`; skips without it."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed: apt-get install dicom3tools (Debian) to validate against the standard")
    run = subprocess.run([tool, *map(str, paths)], capture_output=True, text=True, timeout=120)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(("Error", "Warning"))]


def errors(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("Error")]
