"""DICOM Segmentation (SEG) objects for label volumes, written and read with highdicom.

Why: radiology users view results over the study in a PACS, OHIF or 3D Slicer, which take DICOM SEG (not
NIfTI); and SEGs made elsewhere can serve as training labels or evaluation references. Public API:

    write_dicom_seg(labels, source_series, out_path, *, segment_labels, model_id, ...) -> Path
        a BINARY SEG of a label volume that lies on the grid of `read_dicom_series(source_series)`.
    read_dicom_seg(seg_path, source_series=None) -> Volume
        the label volume again: on the source series' grid when it is given, else on the SEG's own grid.

Segments: label value v (1..N) is segment number v, so a read-back gives the label values that were written.
`segment_labels` must therefore name every label 1..N (DICOM numbers segments from 1 without gaps); a
declared label with no voxel stays declared, with no frame. Frames: one per (source slice, segment) with
any voxel of that segment (empty frames are omitted), each referencing its source instance.

Geometry: voxel (i, j, k) of the source volume is column i, row j of the k-th slice in order along the
slice normal (as `read_dicom_series` sorts them, whatever the file names or InstanceNumbers), so the writer
hands highdicom the label frames `labels[:, :, k].T` with the k-th sorted source instance; highdicom
copies that instance's position and orientation into the frame. The reader takes highdicom's volume of the
SEG (its frames placed by their own plane positions, omitted frames filled with 0) and samples it at
every source voxel centre (nearest neighbour), which reproduces the written labels exactly when the
frames lie on the source grid, and resamples SEGs drawn on other grids of the same Frame of Reference.

Coded properties: names of the BraTS labels and regions map to the codes DICOM lists for brain lesion
segmentation (CID 7168/7159, category SCT 49755003 "Morphologically Abnormal Structure"): necrosis SCT
6574001, edema SCT 79654002, enhancing / non-enhancing lesion NCIt C113842 / C81175 (DICOM uses NCIt
there: SNOMED CT has no such concepts), whole tumour SCT 52988006 "Lesion", tumour core SCT 108369006
"Neoplasm". Other names get the generic SCT 85756007 "Tissue" (category and type) unless
`segment_properties` gives codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from .. import __version__
from ..errors import InputError
from .dicom import LPS_TO_RAS
from .dicom_series import SeriesLayout, read_series_layout
from .dicom_write import check_long_strings
from .volume import Volume, spacing_from_affine

RESEARCH_USE = "research use only"
DEFAULT_SERIES_DESCRIPTION = f"medhub segmentation - {RESEARCH_USE}"
ABNORMAL = codes.SCT.MorphologicallyAbnormalStructure
LESION_TYPES = {
    "necrosis": codes.SCT.Necrosis, "necrotic": codes.SCT.Necrosis, "necroticcore": codes.SCT.Necrosis,
    "edema": codes.SCT.Edema, "oedema": codes.SCT.Edema,
    "nonenhancing": codes.NCIt.NonEnhancingLesion, "nonenhancingtumor": codes.NCIt.NonEnhancingLesion,
    "nonenhancingtumour": codes.NCIt.NonEnhancingLesion,
    "enhancing": codes.NCIt.EnhancingLesion, "enhancingtumor": codes.NCIt.EnhancingLesion,
    "enhancingtumour": codes.NCIt.EnhancingLesion,
    "wholetumor": codes.SCT.Lesion, "wholetumour": codes.SCT.Lesion,
    "tumorcore": codes.SCT.Neoplasm, "tumourcore": codes.SCT.Neoplasm,
}
GENERIC = (codes.SCT.Tissue, codes.SCT.Tissue)


def coded_property(label_name: str) -> tuple[Code, Code]:
    """(category, type) codes for a segment named `label_name` (see the module docstring)."""
    key = re.sub(r"[^a-z]", "", label_name.lower())
    return (ABNORMAL, LESION_TYPES[key]) if key in LESION_TYPES else GENERIC


def write_dicom_seg(labels: np.ndarray | Volume, source_series: str | Path | list, out_path: str | Path, *,
                    segment_labels: Mapping[int, str], model_id: str, model_revision: str | None = None,
                    algorithm_name: str | None = None, algorithm_version: str | None = None,
                    segment_properties: Mapping[int, tuple[Code, Code]] | None = None,
                    series_description: str = DEFAULT_SERIES_DESCRIPTION, series_number: int = 300) -> Path:
    """Write `labels` (X, Y, Z integers, 0 = background) as a BINARY DICOM SEG of `source_series` (a folder
    or a list of its files) at `out_path`; returns `out_path`.

    labels: on the grid of `read_dicom_series(source_series)` (a `Volume` must carry that affine).
    segment_labels: {label value: name} for labels 1..N, e.g. a model's id2label without 0.
    model_id / model_revision: recorded in each segment's algorithm identification (name = algorithm_name
        or model_id; version = algorithm_version, else model_revision, else the medhub version) with the
        medhub version; SoftwareVersions is the medhub version.
    segment_properties: {label value: (category, type) codes} overriding `coded_property(name)`.
    series_description: must say "research use only" (at most 64 characters).
    """
    layout = read_series_layout(source_series)
    name = f"write_dicom_seg({out_path})"
    array = _label_array(labels, layout, name)
    numbers = sorted(int(v) for v in segment_labels)
    if numbers != list(range(1, len(numbers) + 1)):
        raise InputError(f"{name}: segment_labels keys {numbers}; expected the label values 1..N without gaps "
                         "(they become DICOM segment numbers; 0 is background)")
    undeclared = sorted(set(np.unique(array).tolist()) - {0, *numbers})
    if undeclared:
        raise InputError(f"{name}: label values {undeclared} in the labels are not in segment_labels {numbers}")
    if RESEARCH_USE not in series_description.lower():
        raise InputError(f"{name}: series_description {series_description!r} must contain {RESEARCH_USE!r}")
    check_long_strings(name, series_description=series_description, model_id=model_id,
                       algorithm_name=algorithm_name or "", algorithm_version=algorithm_version or "",
                       model_revision=model_revision or "",
                       **{f"segment_labels[{v}]": str(segment_labels[v]) for v in numbers})
    properties = dict(segment_properties or {})
    if not set(properties) <= set(numbers):
        raise InputError(f"{name}: segment_properties for labels {sorted(set(properties) - set(numbers))} that "
                         f"segment_labels {numbers} does not declare")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name or model_id, family=codes.cid7162.ArtificialIntelligence,
        version=algorithm_version or model_revision or f"medhub {__version__}", source=f"medhub {__version__}",
        parameters={"model_id": model_id, "model_revision": model_revision or "", "medhub_version": __version__})
    descriptions = []
    for number in numbers:
        category, kind = properties.get(number) or coded_property(segment_labels[number])
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=str(segment_labels[number]),
            segmented_property_category=category, segmented_property_type=kind,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC, algorithm_identification=algorithm))
    try:
        seg = hd.seg.Segmentation(
            source_images=layout.datasets, pixel_array=np.ascontiguousarray(array.transpose(2, 1, 0)),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(),
            instance_number=1, manufacturer="medhub", manufacturer_model_name="medhub",
            software_versions=__version__, device_serial_number=f"medhub-{__version__}",
            series_description=series_description, content_label="SEGMENTATION",
            content_description=series_description)
    except (AttributeError, ValueError, TypeError) as err:  # highdicom: a source attribute missing or invalid
        raise InputError(f"{layout.source}: cannot derive a DICOM SEG from this series ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]})") from None
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out_path)
    return out_path


def read_dicom_seg(seg_path: str | Path, source_series: str | Path | list | None = None) -> Volume:
    """The label volume of the SEG at `seg_path` (integers: segment numbers, 0 = background).

    With `source_series` (a folder or a list of files): on exactly the grid of `read_dicom_series(source)`
    (same shape and affine); the SEG must share its Frame of Reference. Without it: on the grid of the SEG's
    own frames, from the first to the last frame position that has one. The Volume's header is the
    highdicom Segmentation (segment names and codes in its SegmentSequence)."""
    seg_path = Path(seg_path)
    seg = _segread(seg_path)
    try:
        own = seg.get_volume(combine_segments=True, relabel=False)
    except (RuntimeError, ValueError) as err:
        raise InputError(f"{seg_path}: the SEG's frames do not form one label volume ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]})") from None
    permute = np.eye(4)[[2, 1, 0, 3]]  # (column, row, slice) -> highdicom's (slice, row, column)
    affine = LPS_TO_RAS @ own.affine @ permute
    array = own.array.transpose(2, 1, 0)
    if np.linalg.det(affine[:3, :3]) < 0:  # slices against the row x column normal: order them as read_dicom_series
        flip = np.diag([1.0, 1.0, -1.0, 1.0])
        flip[2, 3] = array.shape[2] - 1
        affine, array = affine @ flip, array[:, :, ::-1]
    array = np.ascontiguousarray(array)
    if source_series is None:
        return Volume(array, affine, spacing_from_affine(affine), str(seg_path), seg)
    layout = read_series_layout(source_series)
    source_for, seg_for = _frame_of_reference(layout), seg.get("FrameOfReferenceUID")
    if seg_for != source_for:
        raise InputError(f"{seg_path}: FrameOfReferenceUID {seg_for} differs from the source series' {source_for} "
                         f"({layout.source}); the SEG was not drawn in that series' patient coordinates")
    resampled = _sample_nearest(array, np.linalg.inv(affine) @ layout.affine, layout.shape)
    if array.any() and not resampled.any():
        raise InputError(f"{seg_path}: no labelled voxel of the SEG lies inside the source series' volume "
                         f"({layout.source})")
    return Volume(resampled, layout.affine, layout.spacing, str(seg_path), seg)


def _sample_nearest(array: np.ndarray, to_array: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """`array` sampled at the voxels of a grid of `shape` (nearest voxel; 0 outside), `to_array` mapping that
    grid's indices to `array`'s. Rounds the mapped indices itself: scipy's order-0 affine_transform puts
    some voxels one off when the mapping is an axis flip with 1e-12 of float noise (oblique grids)."""
    out = np.zeros(shape, dtype=array.dtype)
    i, j = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    plane = np.stack([i.ravel(), j.ravel(), np.zeros(i.size)]).astype(np.float64)
    bounds = np.asarray(array.shape)[:, None]
    for k in range(shape[2]):
        plane[2] = k
        index = np.rint(to_array[:3, :3] @ plane + to_array[:3, 3:]).astype(np.int64)
        inside = np.all((index >= 0) & (index < bounds), axis=0)
        values = np.zeros(i.size, dtype=array.dtype)
        values[inside] = array[tuple(index[:, inside])]
        out[:, :, k] = values.reshape(shape[:2])
    return out


def _label_array(labels: np.ndarray | Volume, layout: SeriesLayout, name: str) -> np.ndarray:
    """`labels` as an unsigned integer array, checked against the source series' grid."""
    if isinstance(labels, Volume):
        if labels.shape == layout.shape and not np.allclose(labels.affine, layout.affine, atol=1e-3):
            raise InputError(f"{name}: the labels' affine {labels.affine.round(4).tolist()} is not the source "
                             f"series' {layout.affine.round(4).tolist()} ({layout.source}); resample them onto it")
        labels = labels.array
    array = np.asarray(labels)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.shape != layout.shape:
        raise InputError(f"{name}: labels of shape {array.shape}; the source series {layout.source} reads as "
                         f"{layout.shape} (columns, rows, slices)")
    if array.size and (not np.array_equal(array, np.round(array)) or array.min() < 0 or array.max() > 65535):
        raise InputError(f"{name}: labels must be integers in 0..65535, got values in [{array.min()}, {array.max()}]")
    _frame_of_reference(layout)
    return array.astype(np.uint8 if array.max(initial=0) < 256 else np.uint16)


def _frame_of_reference(layout: SeriesLayout) -> str:
    """The one FrameOfReferenceUID of the series' slices; InputError when missing or mixed."""
    uids = {str(ds.get("FrameOfReferenceUID", "")) for ds in layout.datasets}
    if len(uids) != 1 or "" in uids:
        raise InputError(f"{layout.source}: slices carry FrameOfReferenceUID {sorted(uids)}; expected one (a SEG "
                         "is placed in its source's frame of reference)")
    return uids.pop()


def _segread(path: Path) -> hd.seg.Segmentation:
    """highdicom's reading of a SEG file, with InputError for anything that is not one."""
    if not path.is_file():
        raise InputError(f"{path}: no such DICOM SEG file")
    try:
        return hd.seg.segread(path)
    except Exception as err:  # noqa: BLE001 - pydicom/highdicom raise many types for non-SEG or corrupt files
        raise InputError(f"{path}: not a readable DICOM Segmentation ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:300]}); expected SOP class Segmentation Storage") from None


__all__ = ["coded_property", "read_dicom_seg", "write_dicom_seg"]
