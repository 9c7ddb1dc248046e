"""The 2D segmentation demo (U-Net): mask overlay, per-class area, the mask as PNG, Dice against a ground truth,
and, for weights that name a cell-instance post-processing (the ISBI 2012 U-Net), the cells of a seeded watershed
each in its own colour, with their count.

Prediction is `medhub.predict.segment_image` (whole image in one pass, overlap-tile or sliding window as the
model needs), so the mask has the uploaded image's size. A ground-truth upload is a label image of that size:
values 0..K-1, or K distinct grey levels mapped to labels in increasing order (ISBI 2012: 0 membrane, 255 cell).
API: `/<slug>` (image, ground truth or None, opacity) -> (overlay, area table, mask PNG, Dice / details text,
cell instances picture or None).
"""

from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from ..errors import InputError
from ..inference import instance_postprocessing
from ..io import read_any
from ..metrics import dice
from ..predict import instance_overlay, label_overlay, segment_image
from .loading import LoadedModel, gpu
from .ui import model_details, output_dir, picture_file, user_errors
from .uploads import check_upload, example_paths, uploads


def ground_truth_labels(path: str, shape: tuple[int, int], num_labels: int) -> np.ndarray:
    """A label image read from `path`, checked against the prediction's shape and the number of labels."""
    check_upload(path, dims=2)
    array = np.asarray(read_any(path).pixels)
    if array.ndim == 3:  # RGB(A) label picture: its first channel
        array = array[..., 0]
    if array.shape != shape:
        raise InputError(f"ground truth {array.shape[1]}x{array.shape[0]} does not match the image "
                         f"{shape[1]}x{shape[0]}; upload the label image of this image")
    values = np.unique(array)
    if values.max() < num_labels and np.all(values == np.round(values)):
        return array.astype(np.int64)
    if len(values) <= num_labels:
        return np.searchsorted(values, array).astype(np.int64)
    raise InputError(f"ground truth has {len(values)} distinct values; the model predicts {num_labels} labels")


def segment(loaded: LoadedModel, path: str, truth: str | None = None, opacity: float = 0.4):
    """(display, labels, per-class table, dice per class or None, cell instances or None) for one image (and
    optional ground truth)."""
    if not path:
        raise gr.Error("upload an image first (PNG, JPEG or DICOM)")
    with uploads.held(path, truth):
        check_upload(path, dims=2)
        with loaded.lock:
            result = segment_image(loaded.model, path, precision=loaded.precision)
        scores = None
        if truth:
            scores = dice(result.labels, ground_truth_labels(truth, result.labels.shape, len(loaded.labels)),
                          num_classes=len(loaded.labels))
    total = result.labels.size
    table = [[name, int((result.labels == k).sum()), round(100.0 * (result.labels == k).sum() / total, 2)]
             for k, name in enumerate(loaded.labels)]
    return result.display, result.labels, table, scores, result.instances


def build_tab(loaded: LoadedModel, examples_folder=None) -> None:
    entry = loaded.entry
    method, watershed = instance_postprocessing(loaded.model) or (None, {})

    @gpu
    def predict(path, truth, opacity):
        display, labels, table, scores, instances = segment(loaded, path, truth, opacity)
        mask_path = output_dir() / "mask.png"
        Image.fromarray(labels.astype(np.uint8)).save(mask_path)
        text = f"Mask: {labels.shape[1]}x{labels.shape[0]} pixels, PNG values 0..{len(loaded.labels) - 1} " \
               f"({', '.join(f'{k} = {n}' for k, n in enumerate(loaded.labels))})."
        if scores is not None:
            text += "\n\nDice vs ground truth: " + ", ".join(f"{n} **{s:.3f}**" for n, s in zip(loaded.labels, scores))
        cells = None
        if instances is not None:
            what, of = ("Nuclei", "nucleus") if method == "nuclei_watershed" else ("Cells", "cell")
            text += (f"\n\n{what}: **{int(instances.max())}** (seeded watershed of the {of} probability, "
                     f"{', '.join(f'{k} {v}' for k, v in watershed.items())}).")
            cells = picture_file(instance_overlay(display, instances), "cells")
        overlay = label_overlay(display, labels, alpha=float(opacity))
        return picture_file(overlay, "overlay"), table, str(mask_path), text, cells, (display, labels)

    def reblend(state, opacity):
        return None if state is None else picture_file(label_overlay(state[0], state[1], alpha=float(opacity)),
                                                       "overlay")

    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Image (PNG, JPEG or DICOM)", type="filepath", elem_id=f"{entry.slug}-upload")
            truth = gr.File(label="Ground-truth label image (optional: shows Dice)", type="filepath")
            opacity = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Mask opacity")
            run = gr.Button("Segment", variant="primary", elem_id=f"{entry.slug}-run")
            examples = example_paths(entry, examples_folder)
            if examples:
                rows = [[p, p.replace("/image/", "/label/") if "/train/image/" in p else None] for p in examples]
                gr.Examples(examples=rows, inputs=[upload, truth], label="Examples")
        with gr.Column(scale=2):
            overlay = gr.Image(label="Predicted mask over the image", type="numpy", format="png", interactive=False,
                               elem_id=f"{entry.slug}-overlay")
            cells = gr.Image(label="Cells (seeded watershed), each in its own colour", type="numpy", format="png",
                             interactive=False, visible=watershed is not None, elem_id=f"{entry.slug}-cells")
        with gr.Column(scale=1):
            summary = gr.Markdown()
            areas = gr.Dataframe(headers=["label", "pixels", "area %"], label="Per-class area", interactive=False)
            mask = gr.File(label="Mask (PNG, label values)", interactive=False)
    gr.Markdown(model_details(loaded))
    state = gr.State(None)
    run.click(user_errors(predict), inputs=[upload, truth, opacity],
              outputs=[overlay, areas, mask, summary, cells, state],
              api_name=entry.slug)
    opacity.release(reblend, inputs=[state, opacity], outputs=[overlay], api_visibility="private",
                    show_progress="hidden")


__all__ = ["build_tab", "ground_truth_labels", "segment"]
