"""DICOM in, DICOM out: which file a 3D segmenter's prediction goes to, and the DICOM SEG of a prediction.

`--format` (`output_format`):
- "auto" (default): a DICOM Segmentation `<stem>_seg.dcm` when every channel of the case is a DICOM series
  folder, else NIfTI `<stem>_seg.nii.gz`;
- "nifti": always NIfTI;
- "dicom-seg": always a SEG; a case whose channels are not DICOM series fails (a SEG must reference source
  instances), and a model that is not a 3D segmenter is refused before any input runs.

The SEG (`medhub.io.write_dicom_seg`) lies on the first channel's series - the grid the labels are predicted on
(`segment_subject`), the same labels and grid the NIfTI gets - and references that series' instances, Frame of
Reference and Patient/Study. Segments: the model's labels 1..K-1 (`id2label`, 0 = background). Algorithm
identification: the model id (a Hub / zoo id; a local folder's name) and its revision: the Hub commit of the
downloaded snapshot, else `sha256:` and the first 16 hex digits of the weights file's SHA-256 (zoo and local
folders have no commits), so a SEG always names the exact weights that drew it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import Volume, save_nifti, write_dicom_seg
from ..io.dicom_write import LO_MAX
from .cases import Case
from .writers import atomic_write

FORMATS = ("auto", "nifti", "dicom-seg")
SEG_SUFFIX, NIFTI_SUFFIX = "_seg.dcm", "_seg.nii.gz"


def check_output_format(model, output_format: str) -> None:
    """InputError (before any input runs) for an unknown format, or a SEG asked of a model that draws no volume."""
    if output_format not in FORMATS:
        raise InputError(f"output format {output_format!r}; expected one of {list(FORMATS)}")
    if output_format == "dicom-seg" and model.spatial_dims != 3:
        raise InputError(f"--format dicom-seg: {model.name_or_path} is a {model.spatial_dims}D "
                         f"{model.pipeline_tag} model; DICOM SEG output is for 3D segmenters")


def is_dicom_case(case: Case) -> bool:
    """Every channel of the case is a folder (a DICOM series; files are NIfTI or single images)."""
    return all(path.is_dir() for path in case.paths)


def label_volume_path(case: Case, out_dir: Path, output_format: str) -> Path:
    """Where a 3D case's labels go: `<stem>_seg.dcm` or `<stem>_seg.nii.gz` (see the module docstring)."""
    seg = output_format == "dicom-seg" or (output_format == "auto" and is_dicom_case(case))
    return out_dir / f"{case.stem}{SEG_SUFFIX if seg else NIFTI_SUFFIX}"


def check_case_format(case: Case, path: Path) -> None:
    """InputError when a SEG is asked for a case that has no DICOM series to reference (before inference)."""
    if path.name.endswith(SEG_SUFFIX) and not is_dicom_case(case):
        files = [str(p) for p in case.paths if not p.is_dir()]
        raise InputError(f"{case.name}: --format dicom-seg needs DICOM series folders as input (a SEG references "
                         f"its source instances); {files} are files - use --format nifti or auto")


def write_label_volume(model, case: Case, labels: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write a 3D case's labels (on its first channel's grid, `affine`) to `path`: a SEG or NIfTI, atomically."""
    if not path.name.endswith(SEG_SUFFIX):
        return atomic_write(path, lambda tmp: save_nifti(labels, affine, tmp))
    check_case_format(case, path)
    names = {int(k): str(v) for k, v in model.config.id2label.items() if int(k) != 0}
    model_id, revision = model_identity(model)
    volume = Volume(labels, affine, (1.0, 1.0, 1.0), case.name)  # write_dicom_seg checks the affine is the series'
    return atomic_write(path, lambda tmp: write_dicom_seg(volume, case.paths[0], tmp, segment_labels=names,
                                                          model_id=model_id, model_revision=revision))


def model_identity(model) -> tuple[str, str | None]:
    """(model id, revision) recorded in a SEG's algorithm identification (see the module docstring)."""
    name = str(getattr(model, "name_or_path", "") or type(model).__name__)
    if Path(name).expanduser().is_dir():
        name = Path(name).expanduser().resolve().name
    if len(name) > LO_MAX:
        raise InputError(f"model id {name!r} has {len(name)} characters; a DICOM SEG's algorithm name holds "
                         f"{LO_MAX} (VR LO) - load the model from a folder with a shorter name")
    folder = getattr(model, "weights_folder", None)
    if folder is None:
        return name, None
    folder = Path(folder)
    if folder.parent.name == "snapshots":  # a Hugging Face cache snapshot: the folder is named by its commit
        return name, folder.name
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return name, None
    digest = hashlib.sha256()
    for file in weights:
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return name, f"sha256:{digest.hexdigest()[:16]}"


__all__ = ["FORMATS", "check_case_format", "check_output_format", "is_dicom_case", "label_volume_path",
           "model_identity", "write_label_volume"]
