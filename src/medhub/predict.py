"""Whole-image prediction: run a medhub model on image files, volumes and folders, write the results.

`predict_paths(model, inputs, out_dir)` is what `medhub predict` runs. Per input it writes, always to a temporary
name in `out_dir` first and then `os.replace`d into place (a crash never leaves a half-written output):

- 2D segmenters: `<stem>_mask.png` (label values 0..K-1, uint8) and `<stem>_overlay.png` (labels over the image);
  models whose weights name a cell-instance post-processing (`weights_info["instances"]`, the ISBI 2012 U-Net)
  add `<stem>_instances.png` (16-bit cell labels 1..n, 0 on the watershed lines) and
  `<stem>_instances_overlay.png` (each cell in its own colour), from `medhub.inference.membrane_watershed`;
- 3D segmenters: `<stem>_seg.nii.gz`, a label volume (uint8, int16 beyond 255 labels) with the input's affine;
- classifiers: one row per input in `<out>/predictions.csv` (columns: input, then one per label; sigmoid for
  multi-label and one-output models, softmax for single-label) and `<stem>_heatmap.png`, the top class's CAM
  (models ending in global average pooling + a linear `classifier`/`fc`) or else its Grad-CAM over the image.
An input whose outputs all exist is skipped (counted in the report) unless `overwrite=True`.

Inputs: PNG/JPEG/DICOM images, NIfTI files, DICOM series folders, or folders searched recursively. A model with
several input channels (`config.channel_names`, e.g. ["flair", "t1c"]) takes one subject per folder - the file
whose name contains each channel name, case-insensitive (Flair_subtrMeanDivStd.nii.gz is "flair") - or the
channel files joined by commas, in the order of `channel_names`.

Preprocessing: `model.image_processor` (saved with the weights), else the family's `default_image_processor()`,
else the default: 2D images to greyscale in [0, 1] at their own size (DICOM window/VOI LUT and MONOCHROME1
applied; `RadiographImageProcessor(do_resize=False, do_normalize=False)`), replicated when the model takes 3
channels; volumes as they are (channels stacked in the given order, geometry untouched). Predictions of a
processor that resizes or reorients are mapped back to the input's grid (probabilities bilinearly for 2D,
labels by nearest neighbour through the two affines for 3D).

Whole-image inference, per model kind (`predict_probabilities`):
- 'same'-padding nets (U-Net padding="same", Attention U-Net, 2D or 3D): the whole image in one pass when it
  fits in `roi_size`, mirror-padded to a multiple of 2**depth; otherwise a Gaussian-weighted sliding window;
- 'valid'-padding U-Net (the paper's): the overlap-tile strategy, mirror-padding the borders;
- DeepMedic: its own dense tiling, `segment_volume`;
- `tta=True` averages the probabilities over flips of every spatial axis (classifiers: left-right only).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from tqdm.auto import tqdm

from .errors import InputError
from .inference import flip_tta, mirror_pad, overlap_tile_inference, sliding_window_inference
from .io import Volume, read_any
from .io.nifti import is_nifti_name

CSV_NAME = "predictions.csv"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
DEFAULT_ROI = {2: 512, 3: 96}
TMP_PREFIX = ".medhub-tmp-"
# Overlay colours for labels 1, 2, ... (label 0 is background and stays the image).
PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255],
                    [255, 128, 0], [128, 0, 255]], dtype=np.float64)


# -- what the model is --------------------------------------------------------------------------------------
def model_kind(model) -> str:
    """"classifier", "deepmedic" (dense tiling of its own) or "segmenter" (a U-Net-like dense predictor)."""
    if hasattr(model, "segment_volume"):
        return "deepmedic"
    if getattr(model, "pipeline_tag", "") == "image-classification":
        return "classifier"
    if getattr(model, "pipeline_tag", "") == "image-segmentation" or hasattr(model.config, "padding"):
        return "segmenter"
    raise InputError(f"{type(model).__name__}: medhub predict handles image classifiers and segmenters only")


def spatial_dims(model) -> int:
    return 3 if model_kind(model) == "deepmedic" else int(getattr(model.config, "spatial_dims", 2) or 2)


def channel_names(model) -> list[str]:
    """The model's input channel names (config.channel_names, else the processor's, else none)."""
    names = getattr(model.config, "channel_names", None)
    processor = getattr(model, "image_processor", None)
    if not names and processor is not None and len(getattr(processor, "channel_names", []) or []) == model.config.in_channels:
        names = processor.channel_names
    return list(names or [])


def _expected_channels(model) -> str:
    names = channel_names(model)
    return f"{model.config.in_channels} channel(s)" + (f" {names}" if names else "")


def input_processor(model):
    """model.image_processor, else the family default, else None (medhub's default, see the module docstring)."""
    processor = getattr(model, "image_processor", None)
    if processor is None and hasattr(model, "default_image_processor"):
        processor = model.default_image_processor()
    return processor


# -- whole-image probabilities ------------------------------------------------------------------------------
def _activation(model) -> str:
    if model.config.num_labels == 1 or getattr(model.config, "problem_type", None) == "multi_label_classification":
        return "sigmoid"
    return "softmax"


def _activate(logits: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=1)


def predict_probabilities(model, pixel_values: torch.Tensor, roi_size: int | None = None, overlap: float = 0.5,
                          batch_size: int = 4, tta: bool = False, device: str | torch.device | None = None
                          ) -> torch.Tensor:
    """Class probabilities (1, K, *spatial) at the input's size for one preprocessed image (1, C, *spatial)."""
    kind, dims = model_kind(model), spatial_dims(model)
    if pixel_values.ndim != dims + 2 or pixel_values.shape[1] != model.config.in_channels:
        raise InputError(f"input of shape {tuple(pixel_values.shape[1:])}: the model expects {_expected_channels(model)} "
                         f"and {dims} spatial dims")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    pixel_values = pixel_values.to(device=device, dtype=next(model.parameters()).dtype)
    activation = _activation(model)

    def logits_of(x: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=x).logits.float()

    if kind == "classifier":  # TTA: the image and its left-right mirror (radiographs are not upside-down symmetric)
        with torch.inference_mode():
            probs = _activate(logits_of(pixel_values), activation)
            if tta:
                probs = (probs + _activate(logits_of(pixel_values.flip(-1)), activation)) / 2
            return probs.cpu()
    if kind == "deepmedic":
        def strategy(x):
            return model.segment_volume(x[0], batch_size=batch_size, progress=False)[None].to(x.device)
        activation, axes = None, None  # segment_volume returns probabilities already
    else:
        strategy, axes = _dense_strategy(model, logits_of, tuple(pixel_values.shape[2:]), roi_size, overlap,
                                         batch_size, device), None
    with torch.inference_mode():
        if tta:
            return flip_tta(strategy, pixel_values, spatial_axes=axes, activation=activation).cpu()
        out = strategy(pixel_values)
        return (out if activation is None else _activate(out, activation)).cpu()


def _dense_strategy(model, logits_of, spatial: tuple[int, ...], roi_size, overlap, batch_size, device) -> Callable:
    config, dims = model.config, len(spatial)
    roi = roi_size or DEFAULT_ROI[dims]
    depth = int(config.depth)
    if getattr(config, "padding", "same") == "valid":
        in_tile = model.valid_input_size((roi,) * dims)
        out_tile = model.output_size(in_tile)
        context = [(i - o) // 2 for i, o in zip(in_tile, out_tile)]
        # Small images: one tile just large enough to cover them (plus context), not the full ROI.
        in_tile = tuple(min(t, model.valid_input_size((s + 2 * c,) * dims)[0]) for t, s, c in zip(in_tile, spatial, context))
        out_tile = model.output_size(in_tile)
        return lambda x: overlap_tile_inference(logits_of, x, out_tile, in_tile, batch_size=batch_size, device=device)
    step = 2**depth
    padded = tuple(max(step, math.ceil(s / step) * step) for s in spatial)
    if all(p <= roi for p in padded):  # whole image in one pass, mirror-padded to a multiple of 2**depth
        def whole(x):
            out = logits_of(mirror_pad(x, [(0, p - s) for p, s in zip(padded, spatial)]))
            return out[(slice(None), slice(None), *(slice(0, s) for s in spatial))]
        return whole
    window = tuple(min(max(step, roi // step * step), p) for p in padded)
    return lambda x: sliding_window_inference(logits_of, x, window, overlap=overlap, mode="gaussian",
                                              batch_size=batch_size, device=device)


def labels_from_probabilities(probs: torch.Tensor) -> np.ndarray:
    """(K, *spatial) -> label map: argmax over K labels, or probability > 0.5 for one label."""
    labels = (probs[0] > 0.5).long() if probs.shape[0] == 1 else probs.argmax(dim=0)
    return labels.numpy().astype(np.uint8 if max(probs.shape[0], 2) <= 256 else np.int16)


# -- per-kind predictions ----------------------------------------------------------------------------------
@dataclass
class ImagePrediction:
    """display: the image as uint8 (H, W) grey; probs: per-label probabilities; labels (H, W) or heatmap (H, W);
    instances: cell instance labels (H, W) for models with `weights_info["instances"]`."""

    display: np.ndarray
    probs: np.ndarray
    labels: np.ndarray | None = None
    heatmap: np.ndarray | None = None
    label_index: int | None = None
    instances: np.ndarray | None = None


def _default_2d_processor(model):
    from .processing import RadiographImageProcessor

    if model.config.in_channels not in (1, 3):
        raise InputError(f"the model expects {_expected_channels(model)}; medhub reads a 2D image as one greyscale "
                         "channel (replicated for 3-channel models)")
    return RadiographImageProcessor(num_channels=model.config.in_channels, do_resize=False, do_normalize=False)


def _load_image_2d(model, path: Path):
    image = read_any(path)
    if isinstance(image, Volume):
        raise InputError(f"{path}: a 3-D volume {image.shape}; this model ({type(model).__name__}) takes 2D images")
    processor = input_processor(model) or _default_2d_processor(model)
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    if pixel_values.ndim != 4 or pixel_values.shape[1] != model.config.in_channels:
        raise InputError(f"{path}: preprocessed to {pixel_values.shape[1]} channel(s); the model expects "
                         f"{_expected_channels(model)}")
    display = _default_2d_processor_display(image)
    return image, processor, pixel_values, display


def _default_2d_processor_display(image) -> np.ndarray:
    from .processing import RadiographImageProcessor

    return RadiographImageProcessor(do_resize=False, do_normalize=False).display_image(image)


def segment_image(model, path: str | Path, **options: Any) -> ImagePrediction:
    """Label map (H, W) at the image's own size for a 2D segmenter; options as `predict_probabilities`."""
    image, processor, pixel_values, display = _load_image_2d(model, Path(path))
    if getattr(processor, "do_center_crop", False):
        raise InputError(f"{type(processor).__name__}.do_center_crop=True: a cropped input cannot be mapped back "
                         "to the whole image; segment with a processor without centre crop")
    probs = predict_probabilities(model, pixel_values, **options)
    if tuple(probs.shape[2:]) != display.shape:
        probs = F.interpolate(probs, size=display.shape, mode="bilinear", align_corners=False)
    probs = probs[0]
    return ImagePrediction(display=display, probs=probs.numpy(), labels=labels_from_probabilities(probs),
                           instances=cell_instances(model, probs))


def instance_options(model) -> dict | None:
    """The keyword arguments of `membrane_watershed` saved with the weights (`weights_info["instances"]`), or None."""
    from .inference import watershed_options

    instances = (getattr(model.config, "weights_info", None) or {}).get("instances")
    return watershed_options(instances) if instances else None


def cell_instances(model, probs: torch.Tensor) -> np.ndarray | None:
    """Cell labels (H, W) from (2, H, W) membrane/cell probabilities when the weights name a post-processing."""
    options = instance_options(model)
    if options is None or probs.ndim != 3 or probs.shape[0] != 2:
        return None
    from .inference import membrane_watershed

    return membrane_watershed(probs[1].numpy(), **options)


def classify_image(model, path: str | Path, **options: Any) -> ImagePrediction:
    """Probabilities (K,) and the top label's heatmap (CAM, else Grad-CAM) over the image."""
    from .interpret import class_activation_map, grad_cam

    image, processor, pixel_values, display = _load_image_2d(model, Path(path))
    options.pop("roi_size", None), options.pop("overlap", None)
    probs = predict_probabilities(model, pixel_values, **options)[0]
    index = int(probs.argmax())
    x = pixel_values.to(next(model.parameters()).device, next(model.parameters()).dtype)
    heatmap = None
    for name in ("classifier", "fc"):
        if isinstance(getattr(model, name, None), torch.nn.Linear):
            try:
                heatmap = class_activation_map(model, x, index, classifier_name=name)
            except InputError:
                heatmap = None
            break
    if heatmap is None:
        heatmap = grad_cam(model, x, index)
    if getattr(processor, "do_center_crop", False) and hasattr(processor, "display_image"):
        display = processor.display_image(image)  # the heatmap covers the crop only: show the crop
    if heatmap.shape != display.shape:
        heatmap = F.interpolate(torch.from_numpy(heatmap)[None, None], size=display.shape, mode="bilinear",
                                align_corners=False)[0, 0].numpy()
    return ImagePrediction(display=display, probs=probs.numpy(), heatmap=heatmap, label_index=index)


def load_subject(model, paths: Sequence[Path], where: str):
    """(pixel_values (1, C, X, Y, Z), geometry out of the processor, the first channel's Volume)."""
    names = channel_names(model)
    if len(paths) != model.config.in_channels:
        raise InputError(f"{where}: {len(paths)} channel file(s) given; the model expects {_expected_channels(model)} - "
                         "give a subject folder or the channel files joined by commas, in that order")
    volumes = []
    for path in paths:
        volume = read_any(path)
        if not isinstance(volume, Volume):
            raise InputError(f"{path}: a 2D image; this model ({type(model).__name__}) takes 3D volumes "
                             "(NIfTI files or DICOM series folders)")
        volumes.append(volume)
    processor = input_processor(model)
    if processor is not None and hasattr(processor, "preprocess_subject"):
        subject = volumes[0] if len(volumes) == 1 else dict(zip(processor.channel_names, volumes))
        if len(volumes) > 1 and len(processor.channel_names) != len(volumes):
            raise InputError(f"{where}: the processor expects channels {processor.channel_names}; got {len(volumes)} files")
        array, _, affine = processor.preprocess_subject(subject)
    else:  # medhub default: volumes as they are
        for name, volume in zip(names or [str(p) for p in paths], volumes):
            if volume.shape != volumes[0].shape or not np.allclose(volume.affine, volumes[0].affine, atol=1e-3):
                raise InputError(f"{where}: channel {name!r} ({volume.source}) has shape {volume.shape} and affine "
                                 f"unlike the first channel's {volumes[0].shape}; co-register the channels first")
        array, affine = np.stack([v.array for v in volumes]), volumes[0].affine
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None], np.asarray(affine), volumes[0]


def segment_subject(model, paths: Sequence[str | Path], where: str | None = None, **options: Any
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Label volume in the geometry of the first channel file, and that file's affine."""
    paths = [Path(p) for p in paths]
    pixel_values, affine, reference = load_subject(model, paths, where or str(paths[0]))
    probs = predict_probabilities(model, pixel_values, **options)
    labels = labels_from_probabilities(probs[0])
    if labels.shape != reference.shape or not np.allclose(affine, reference.affine, atol=1e-4):
        # Processed grid -> input grid: voxel of the input -> world -> voxel of the processed grid (nearest).
        matrix = np.linalg.inv(affine) @ reference.affine
        labels = ndimage.affine_transform(labels, matrix, output_shape=reference.shape, order=0, mode="constant",
                                          cval=0).astype(labels.dtype)
    return labels, reference.affine


# -- inputs -----------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One prediction: `name` as the user named it (CSV key), the channel `paths`, the output `stem`."""

    name: str
    paths: list[Path]
    stem: str = ""
    error: str | None = None  # an input that could not even be assembled (reported like a failed prediction)


def _stem(path: Path) -> str:
    name = path.name
    return name[:-7] if name.lower().endswith(".nii.gz") else (path.stem if path.is_file() else name)


def _match_channels(folder: Path, names: Sequence[str]) -> list[Path] | None:
    """Files of `folder` whose names contain each channel name (a longer name that also matches wins)."""
    files = [f for f in sorted(folder.iterdir()) if not f.name.startswith(".") and (f.is_file() or f.is_dir())]
    chosen = []
    for name in names:
        longer = [o.lower() for o in names if o != name and name.lower() in o.lower()]
        hits = [f for f in files if name.lower() in f.name.lower() and not any(o in f.name.lower() for o in longer)]
        if len(hits) != 1:
            return None
        chosen.append(hits[0])
    return chosen if len(set(chosen)) == len(chosen) else None


def _walk(root: Path, skip: Path | None) -> list[tuple[Path, list[Path], list[Path]]]:
    result = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or Path(folder, d).resolve() != skip))
        result.append((Path(folder), [Path(folder, d) for d in dirs],
                       [Path(folder, f) for f in sorted(files) if not f.startswith(".")]))
    return result


def collect_cases(model, inputs: Sequence[str | Path], out_dir: str | Path | None = None) -> list[Case]:
    """Expand files, comma-joined channel files and folders into cases (see the module docstring)."""
    dims, names, n_channels = spatial_dims(model), channel_names(model), model.config.in_channels
    skip = Path(out_dir).resolve() if out_dir is not None else None
    cases: list[Case] = []
    for item in inputs:
        item = str(item)
        if "," in item:
            cases.append(Case(item, [Path(p) for p in item.split(",") if p]))
            continue
        path = Path(item)
        if not path.exists():
            cases.append(Case(item, [path], error=f"{path}: no such file or folder"))
        elif path.is_file():
            cases.append(Case(item, [path]))
        elif dims == 3 and n_channels > 1:
            cases.extend(_subject_cases(path, names, n_channels, skip))
        elif dims == 3:
            cases.extend(_volume_cases(path, skip))
        else:
            cases.extend(Case(str(f), [f]) for _, _, files in _walk(path, skip) for f in files
                         if f.suffix.lower() in IMAGE_SUFFIXES)
    _assign_stems(cases)
    return cases


def _subject_cases(root: Path, names: list[str], n_channels: int, skip: Path | None) -> list[Case]:
    if len(names) != n_channels:
        return [Case(str(root), [root], error=f"{root}: the model expects {n_channels} channels but names none "
                     "(config.channel_names), so a folder cannot be matched; join the channel files with commas")]
    found = [Case(str(folder), matched) for folder, _, _ in _walk(root, skip)
             if (matched := _match_channels(folder, names)) is not None]
    if not found:
        return [Case(str(root), [root], error=f"{root}: no subject folder with one file per channel {names} (a file "
                     "whose name contains the channel name, case-insensitive)")]
    return found


def _volume_cases(root: Path, skip: Path | None) -> list[Case]:
    cases = []
    for folder, dirs, files in _walk(root, skip):
        cases.extend(Case(str(f), [f]) for f in files if is_nifti_name(f))
        if not dirs and any(f.suffix.lower() in (".dcm", ".dicom") for f in files):
            cases.append(Case(str(folder), [folder]))  # a DICOM series
    return cases or [Case(str(root), [root], error=f"{root}: no NIfTI file or DICOM series folder in it")]


def _assign_stems(cases: list[Case]) -> None:
    """Output stems: the file (or subject folder) name; clashes get their parent folders' names prefixed."""
    for case in cases:
        first = case.paths[0]
        case.stem = first.parent.name if len(case.paths) > 1 and len({p.parent for p in case.paths}) == 1 \
            and first.parent.name else _stem(first)
    for level in range(1, 4):
        stems = [c.stem for c in cases]
        clashing = [c for c in cases if stems.count(c.stem) > 1]
        if not clashing:
            return
        for case in clashing:
            parents = [p.name for p in case.paths[0].parents][len(case.paths) > 1:][:level]
            case.stem = "_".join([*reversed([p for p in parents if p]), _stem(case.paths[0])])
    seen: dict[str, int] = {}
    for case in cases:
        seen[case.stem] = seen.get(case.stem, 0) + 1
        if seen[case.stem] > 1:
            case.stem = f"{case.stem}-{seen[case.stem]}"


# -- outputs ----------------------------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call write(tmp) with a temporary name next to `path` (same extension), then os.replace it into place."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def remove_stale_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporary files left in `out_dir` by a killed run (their process is gone); return them."""
    removed = []
    for tmp in out_dir.glob(f"{TMP_PREFIX}*"):
        pid = tmp.name[len(TMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save_png(array: np.ndarray, path: Path) -> Path:
    return atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def label_overlay(display: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8: the grey image with each label > 0 tinted in its palette colour."""
    rgb = np.repeat(display[..., None].astype(np.float64), 3, axis=2)
    for value in np.unique(labels):
        if value > 0:
            mask = labels == value
            rgb[mask] = (1 - alpha) * rgb[mask] + alpha * PALETTE[(int(value) - 1) % len(PALETTE)]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def instance_overlay(display: np.ndarray, instances: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB uint8: the grey image with every instance > 0 tinted in its own colour (fixed per label value), so
    that neighbouring cells are told apart; label 0 (the watershed lines) stays grey."""
    colours = np.random.default_rng(0).integers(40, 256, size=(int(instances.max()) + 1, 3)).astype(np.float64)
    rgb = np.repeat(display[..., None].astype(np.float64), 3, axis=2)
    inside = instances > 0
    rgb[inside] = (1 - alpha) * rgb[inside] + alpha * colours[instances[inside]]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _outputs(kind: str, dims: int, out_dir: Path, stem: str, instances: bool = False) -> list[Path]:
    if kind == "classifier":
        return [out_dir / f"{stem}_heatmap.png"]
    if dims == 2:
        extra = [out_dir / f"{stem}_instances.png", out_dir / f"{stem}_instances_overlay.png"] if instances else []
        return [out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png", *extra]
    return [out_dir / f"{stem}_seg.nii.gz"]


class PredictionTable:
    """predictions.csv: one row per input, rewritten atomically after each new row."""

    def __init__(self, path: Path, labels: list[str], overwrite: bool):
        self.path, self.header = path, ["input", *labels]
        self.rows: dict[str, list[str]] = {}
        if path.is_file() and not overwrite:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header != self.header:
                    raise InputError(f"{path}: written for other labels (columns {header}); expected {self.header} - "
                                     "use another --out folder or --overwrite")
                self.rows = {row[0]: row for row in reader if row}

    def add(self, name: str, probs: np.ndarray) -> None:
        self.rows[name] = [name, *(f"{p:.6f}" for p in probs)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows.values())
        atomic_write(self.path, lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8"))


@dataclass
class PredictionReport:
    """What a run did: inputs predicted (name -> output files), skipped (outputs existed), failed (name, error)."""

    predicted: dict[str, list[Path]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def predict_paths(model, inputs: Sequence[str | Path], out_dir: str | Path, *, batch_size: int = 4,
                  device: str | torch.device | None = None, tta: bool = False, roi_size: int | None = None,
                  overlap: float = 0.5, overwrite: bool = False, progress: bool = True) -> PredictionReport:
    """Predict every input (files, comma-joined channel files, folders) into `out_dir`; see the module docstring.

    A failing input is reported (printed and listed in the report) and the others still run."""
    if isinstance(model, (str, Path)):
        from .auto import MedModel

        model = MedModel.from_pretrained(model)
    model = model.eval()
    if device is not None:
        model.to(device)
    kind, dims = model_kind(model), spatial_dims(model)
    instances = kind == "segmenter" and dims == 2 and instance_options(model) is not None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    table = PredictionTable(out_dir / CSV_NAME, model.config.labels, overwrite) if kind == "classifier" else None
    options = dict(batch_size=batch_size, tta=tta, roi_size=roi_size, overlap=overlap, device=device)
    report = PredictionReport()
    cases = collect_cases(model, inputs, out_dir)
    for case in tqdm(cases, desc="medhub predict", unit="input", disable=not progress):
        outputs = _outputs(kind, dims, out_dir, case.stem, instances)
        done = all(p.is_file() for p in outputs) and (table is None or case.name in table.rows)
        if done and not overwrite and case.error is None:
            report.skipped.append(case.name)
            continue
        try:
            if case.error is not None:
                raise InputError(case.error)
            _predict_case(model, kind, dims, case, outputs, table, options)
            report.predicted[case.name] = outputs
        except Exception as err:  # noqa: BLE001 - one bad input must not stop a folder; reported below
            message = str(err) if isinstance(err, InputError) else f"{case.name}: {type(err).__name__}: {err}"
            report.failed.append((case.name, message))
            tqdm.write(f"medhub predict: error: {message}", file=sys.stderr)
    return report


def _predict_case(model, kind: str, dims: int, case: Case, outputs: list[Path], table, options: dict) -> None:
    if dims == 3:
        labels, affine = segment_subject(model, case.paths, where=case.name, **options)
        from .io import save_nifti

        atomic_write(outputs[0], lambda tmp: save_nifti(labels, affine, tmp))
        return
    if len(case.paths) != 1:
        raise InputError(f"{case.name}: {len(case.paths)} files joined by commas; a 2D model takes one image per input")
    if kind == "classifier":
        result = classify_image(model, case.paths[0], **options)
        from .interpret import overlay_heatmap

        save_png(overlay_heatmap(result.display, result.heatmap), outputs[0])
        table.add(case.name, result.probs)
        return
    result = segment_image(model, case.paths[0], **options)
    save_png(result.labels if result.labels.dtype == np.uint8 else result.labels.astype(np.uint16), outputs[0])
    save_png(label_overlay(result.display, result.labels), outputs[1])
    if len(outputs) == 4 and result.instances is not None:
        if result.instances.max() > np.iinfo(np.uint16).max:
            raise InputError(f"{case.name}: {result.instances.max()} cells; a 16-bit instances PNG holds 65535")
        save_png(result.instances.astype(np.uint16), outputs[2])
        save_png(instance_overlay(result.display, result.instances), outputs[3])


__all__ = ["Case", "ImagePrediction", "PredictionReport", "atomic_write", "cell_instances", "classify_image",
           "collect_cases", "instance_overlay", "label_overlay", "labels_from_probabilities", "model_kind",
           "predict_paths", "predict_probabilities", "segment_image", "segment_subject"]
