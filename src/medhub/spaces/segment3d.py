"""The 3D segmentation demo (DeepMedic, Attention U-Net): one upload per input channel, three slice views.

Each channel is a NIfTI file or a DICOM series as a .zip; the subject goes through the model's processor and
`model.infer` as in `medhub predict` (`medhub.predict.load_subject`), with the processor's ROI mask (the brain,
derived from the volumes' constant background when no mask is uploaded). Whole-volume inference of a
240x240x155 BraTS subject takes minutes on a CPU, so by default only a centred sub-volume is segmented (the
choice is shown with the result): the region is intersected with the ROI mask and the inferer predicts that
(with its margin of real context); voxels outside it are labelled 0. With "whole volume" the mask is exactly
what `medhub predict` writes. The mask is returned as a NIfTI in the geometry (shape and affine) of the first
channel's file, with per-class volumes in ml.
API: `/<slug>` (channel files..., region, opacity, overlay) -> (summary, axial, coronal, sagittal, x, y, z,
volume table, mask NIfTI).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..errors import InputError
from ..inference import labels_from_probabilities
from ..inference.inferers import pad_to_multiple
from ..interpret import overlay_heatmap
from ..io import save_nifti, spacing_from_affine
from ..predict import channel_names, label_overlay, load_subject
from ..predict.inference import to_reference_grid
from .loading import LoadedModel, device, gpu
from .ui import model_details, output_dir, picture_file, scale_to_uint8, user_errors
from .uploads import check_upload, example_paths, unzip_series, uploads

REGIONS = {"centred 64x64x40 sub-volume (fast)": (64, 64, 40), "centred 96x96x64 sub-volume": (96, 96, 64),
           "whole volume (slow on CPU: minutes)": None}
DEFAULT_REGION = next(iter(REGIONS))
VIEWS = ("axial", "coronal", "sagittal")
MIN_VIEW = 320  # small slices are enlarged (nearest neighbour) to at least this many pixels


@dataclass
class VolumeResult:
    """Everything in the first channel's geometry: display volume (uint8), labels, attention (or None)."""

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    attention: np.ndarray | None
    box: tuple[slice, ...] | None
    region: str


def centred_box(shape: tuple[int, ...], size: tuple[int, ...] | None) -> tuple[slice, ...]:
    if size is None:
        return tuple(slice(0, s) for s in shape)
    return tuple(slice((s - min(c, s)) // 2, (s - min(c, s)) // 2 + min(c, s)) for s, c in zip(shape, size))


def _attention(model, crop: torch.Tensor) -> np.ndarray | None:
    """The finest attention gate's map over `crop` (1, C, X, Y, Z), upsampled to the crop's size."""
    grown, spatial = pad_to_multiple(crop, model.input_size_multiple)
    padded = tuple(grown.shape[2:])
    with torch.inference_mode():
        out = model(pixel_values=grown, output_attentions=True)
    if not out.attentions:
        return None
    finest = max(out.attentions, key=lambda a: a.shape[2:].numel()).float()
    up = F.interpolate(finest, size=padded, mode="trilinear", align_corners=False)[0, 0]
    return up[tuple(slice(0, s) for s in spatial)].cpu().numpy()


def segment_volume_files(loaded: LoadedModel, paths: list[str], region: str = DEFAULT_REGION,
                         with_attention: bool = False) -> VolumeResult:
    """Segment one subject given one file (NIfTI or DICOM-series zip) per channel; see the module docstring."""
    model, names = loaded.model, channel_names(loaded.model) or [f"channel {i}" for i in range(len(paths))]
    if region not in REGIONS:
        raise InputError(f"region {region!r}: expected one of {list(REGIONS)}")
    missing = [n for n, p in zip(names, paths) if not p]
    if missing or len(paths) != model.config.in_channels:
        raise InputError(f"upload one file per channel {names}; missing: {', '.join(missing) or len(paths)}")
    with uploads.held(*paths), tempfile.TemporaryDirectory(prefix="medhub-series-") as scratch:
        scratch = Path(scratch)
        readable = []
        for i, path in enumerate(paths):
            kind = check_upload(path, dims=3)
            readable.append(unzip_series(path, scratch / str(i)) if kind == "zip" else Path(path))
        subject, reference = load_subject(model, readable, where=", ".join(Path(p).name for p in paths))
        pixel_values = torch.from_numpy(subject.pixel_values)[None]
        spatial = tuple(pixel_values.shape[2:])
        box = centred_box(spatial, REGIONS[region])
        roi = np.zeros(spatial, dtype=bool)
        roi[box] = True
        if subject.roi_mask is not None:
            roi &= subject.roi_mask
        if not roi.any():
            raise InputError(f"the {region.split(' (')[0]} holds no voxel of the ROI (the brain); choose "
                             "'whole volume'")
        attention = None
        with loaded.lock:
            probs = model.infer(pixel_values, roi_mask=roi, precision=loaded.precision)[0]
            if with_attention and REGIONS[region] is not None:
                crop = pixel_values[(slice(None), slice(None), *box)].contiguous()
                crop_attention = _attention(model, crop.to(device()))
                if crop_attention is not None:
                    attention = np.zeros(spatial, dtype=np.float32)
                    attention[box] = crop_attention
        labels = to_reference_grid(labels_from_probabilities(probs), subject.affine, reference, order=0)
        if attention is not None:
            attention = to_reference_grid(attention, subject.affine, reference, order=1)
        inside = to_reference_grid(roi.astype(np.uint8), subject.affine, reference, order=0)
        ref_box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(inside)) if inside.any() else None
        return VolumeResult(scale_to_uint8(reference.array), labels, np.asarray(reference.affine), attention,
                            ref_box, region)


def volume_table(labels: np.ndarray, affine: np.ndarray, names: list[str]) -> list[list]:
    voxel_ml = float(np.prod(spacing_from_affine(affine))) / 1000.0
    return [[name, int((labels == k).sum()), round(float((labels == k).sum()) * voxel_ml, 3)]
            for k, name in enumerate(names)]


def render(state: dict | None, view: str, index: int, opacity: float, overlay: str = "mask") -> np.ndarray | None:
    """One slice (axial: [:, :, z], coronal: [:, y, :], sagittal: [x, :, :]) with the mask or attention over it."""
    if state is None:
        return None
    axis = {"sagittal": 0, "coronal": 1, "axial": 2}[view]
    index = int(np.clip(index, 0, state["image"].shape[axis] - 1))
    take = lambda a: np.rot90(np.take(a, index, axis=axis))  # noqa: E731 - rot90: superior / anterior up
    grey = take(state["image"])
    if overlay == "attention" and state.get("attention") is not None:
        picture = overlay_heatmap(grey, take(state["attention"]), alpha=float(opacity))
    else:
        picture = label_overlay(grey, take(state["labels"]), alpha=float(opacity))
    factor = max(1, int(np.ceil(MIN_VIEW / max(picture.shape[:2]))))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1) if factor > 1 else picture


def _default_slices(result: VolumeResult) -> list[int]:
    """(x, y, z): the centre of mass of the foreground inside the region, else the region's centre."""
    box = result.box or tuple(slice(0, s) for s in result.labels.shape)
    foreground = result.labels[box] > 0
    if foreground.any():
        centre = ndimage.center_of_mass(foreground)
        return [int(b.start + round(c)) for b, c in zip(box, centre)]
    return [(b.start + b.stop - 1) // 2 for b in box]


def build_tab(loaded: LoadedModel, examples_folder=None) -> None:
    entry, model = loaded.entry, loaded.model
    names = channel_names(model) or [f"channel {i}" for i in range(model.config.in_channels)]
    has_attention = "attention" in model.config.model_type

    @gpu
    def predict(*args):
        *paths, region, opacity, overlay = args
        result = segment_volume_files(loaded, list(paths), region, with_attention=has_attention)
        out = output_dir() / f"{Path(paths[0]).name.split('.')[0]}_seg.nii.gz"
        save_nifti(result.labels, result.affine, out)
        state = {"image": result.image, "labels": result.labels, "attention": result.attention}
        x, y, z = _default_slices(result)
        spacing = ", ".join(f"{s:g}" for s in spacing_from_affine(result.affine))
        where = ("the whole volume" if REGIONS[region] is None else
                 f"**only the {region.split(' (')[0]}** (voxels outside it are labelled 0; choose 'whole volume' "
                 "for all of it)")
        text = (f"Input {'x'.join(map(str, result.labels.shape))} voxels ({spacing} mm); segmented {where}. "
                f"Mask NIfTI: uint8 label values in the input's geometry.")
        views = [picture_file(render(state, v, i, opacity, overlay), v) for v, i in zip(VIEWS, (z, y, x))]
        shape = result.labels.shape
        sliders = [gr.Slider(maximum=shape[2] - 1, value=z), gr.Slider(maximum=shape[1] - 1, value=y),
                   gr.Slider(maximum=shape[0] - 1, value=x)]
        table = volume_table(result.labels, result.affine, loaded.labels)
        return (text, *views, *sliders, table, str(out), state)

    with gr.Row():
        with gr.Column(scale=1):
            uploads = [gr.File(label=f"{name.upper()} (NIfTI .nii/.nii.gz, or a DICOM series as .zip)",
                               type="filepath", elem_id=f"{entry.slug}-upload-{i}") for i, name in enumerate(names)]
            region = gr.Radio(list(REGIONS), value=DEFAULT_REGION, label="Region to segment")
            opacity = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Overlay opacity")
            overlay = gr.Radio(["mask", "attention"], value="mask", label="Overlay (attention: finest gate's map)",
                               visible=has_attention)
            run = gr.Button("Segment", variant="primary", elem_id=f"{entry.slug}-run")
            if examples_folder is not None:
                examples = example_paths(entry, examples_folder)
                if len(examples) == len(names):
                    gr.Examples(examples=[examples], inputs=uploads, label="Example subject")
        with gr.Column(scale=3):
            summary = gr.Markdown()
            with gr.Row():
                images, sliders = [], []
                for view, axis in zip(VIEWS, "zyx"):
                    with gr.Column(min_width=200):
                        images.append(gr.Image(label=view.capitalize(), type="numpy", format="png",
                                               interactive=False, elem_id=f"{entry.slug}-{view}"))
                        sliders.append(gr.Slider(0, 1, value=0, step=1, label=f"{view} slice ({axis})"))
            with gr.Row():
                table = gr.Dataframe(headers=["label", "voxels", "volume (ml)"], label="Per-class volume",
                                     interactive=False)
                mask = gr.File(label="Mask (NIfTI, input geometry)", interactive=False)
    gr.Markdown(model_details(loaded))
    state = gr.State(None)
    run.click(user_errors(predict), inputs=[*uploads, region, opacity, overlay],
              outputs=[summary, *images, *sliders, table, mask, state], api_name=entry.slug)
    for view, image, slider in zip(VIEWS, images, sliders):
        slider.release(lambda s, i, o, ov, view=view: picture_file(render(s, view, i, o, ov), view),
                       inputs=[state, slider, opacity, overlay],
                       outputs=[image], api_visibility="private", show_progress="hidden")

    def rerender(s, o, ov, *indices):
        return [picture_file(render(s, v, i, o, ov), v) for v, i in zip(VIEWS, indices)]

    controls = dict(inputs=[state, opacity, overlay, *sliders], outputs=images, api_visibility="private",
                    show_progress="hidden")
    opacity.release(rerender, **controls)
    overlay.change(rerender, **controls)


__all__ = ["REGIONS", "build_tab", "centred_box", "render", "segment_volume_files", "volume_table"]
