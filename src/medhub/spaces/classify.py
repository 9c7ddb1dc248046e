"""The classifier demo (CheXNet, ResNet, VGG): labels with probabilities and a CAM / Grad-CAM overlay.

The image is shown as the model sees it: DICOM VOI LUT / window and MONOCHROME1 inversion applied, and the
processor's crop when it has one (`medhub.predict.classify_image` does the work, as `medhub predict` does).
API: `/<slug>` (file, opacity) -> (preprocessed image, {label: probability}, heatmap overlay, details).
"""

from __future__ import annotations

import gradio as gr

from ..interpret import overlay_heatmap
from ..predict import classify_image
from .loading import LoadedModel, gpu
from .ui import model_details, picture_file, user_errors
from .uploads import check_upload, example_paths, uploads


def classify(loaded: LoadedModel, path: str, opacity: float = 0.4):
    """(display uint8 (H, W), {label: probability}, overlay RGB, heatmap (H, W), method) for one image file."""
    if not path:
        raise gr.Error("upload an image first (PNG, JPEG or DICOM)")
    with uploads.held(path):
        check_upload(path, dims=2)
        with loaded.lock:
            result = classify_image(loaded.model, path, precision=loaded.precision)
    probs = {label: float(p) for label, p in zip(loaded.labels, result.probs)}
    overlay = overlay_heatmap(result.display, result.heatmap, alpha=float(opacity))
    return result.display, probs, overlay, result.heatmap


def build_tab(loaded: LoadedModel, examples_folder=None) -> None:
    """The tab's components and events, inside the current gr.Blocks / gr.Tab context."""
    entry = loaded.entry

    @gpu
    def predict(path, opacity):
        display, probs, overlay, heatmap = classify(loaded, path, opacity)
        top = max(probs, key=probs.get)
        text = (f"Top label: **{top}** ({probs[top]:.1%}). Heatmap: class activation map of *{top}* over the "
                f"preprocessed image ({display.shape[1]}x{display.shape[0]}).")
        return picture_file(display, "input"), probs, picture_file(overlay, "cam"), text, (display, heatmap)

    def reblend(state, opacity):
        if state is None:
            return None
        return picture_file(overlay_heatmap(state[0], state[1], alpha=float(opacity)), "cam")

    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Chest radiograph (PNG, JPEG or DICOM)", type="filepath",
                             elem_id=f"{entry.slug}-upload")
            opacity = gr.Slider(0.0, 1.0, value=0.4, step=0.05, label="Heatmap opacity")
            run = gr.Button("Classify", variant="primary", elem_id=f"{entry.slug}-run")
            examples = example_paths(entry, examples_folder)
            if examples:
                gr.Examples(examples=[[p] for p in examples], inputs=[upload], label="Examples")
        with gr.Column(scale=1):
            labels = gr.Label(label="Probabilities", num_top_classes=len(loaded.labels), elem_id=f"{entry.slug}-labels")
            summary = gr.Markdown()
        with gr.Column(scale=2):
            with gr.Row():
                seen = gr.Image(label="Model input (preprocessed)", type="numpy", format="png",
                                interactive=False, elem_id=f"{entry.slug}-seen")
                overlay = gr.Image(label="CAM overlay", type="numpy", format="png", interactive=False,
                                   elem_id=f"{entry.slug}-overlay")
    gr.Markdown(model_details(loaded))
    state = gr.State(None)
    run.click(user_errors(predict), inputs=[upload, opacity], outputs=[seen, labels, overlay, summary, state],
              api_name=entry.slug)
    opacity.release(reblend, inputs=[state, opacity], outputs=[overlay], api_visibility="private",
                    show_progress="hidden")


__all__ = ["build_tab", "classify"]
