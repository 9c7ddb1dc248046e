"""Inference pipelines: `medhub.pipelines.pipeline(task, model)` for "image-classification" and
"image-segmentation".

Classification delegates to transformers' `ImageClassificationPipeline` (top-k labels; softmax, or sigmoid
when `config.problem_type == "multi_label_classification"` or there is one label). Our subclass only changes
how inputs reach the processor: paths go to the medhub processor as they are, so a DICOM keeps its window
and MONOCHROME1 flag instead of being opened by PIL as RGB. `transformers.pipeline("image-classification",
model=medhub_model, image_processor=RadiographImageProcessor(...))` works as well (for PNG/JPEG/PIL inputs).

Segmentation (`SegmentationPipeline`) needs only `model(pixel_values).logits` of shape
(batch, num_labels, *spatial), the config (num_labels, id2label, spatial_dims) and an image processor.
It returns, per class, {"label", "mask", "score", "area"} with the mask at the *input* size:
- one label: sigmoid, mask = probability > `threshold`; several labels: softmax, mask = argmax == class;
- "score" is the mean probability of the class inside its mask (None when the mask is empty);
- 2D masks are PIL "L" images (255 = class) of the original image's size; 3D masks are uint8 arrays
  (X, Y, Z) in the processor's output geometry (the pipeline also returns that `affine`).
Getting back to the input size: probabilities are resized (bilinear/trilinear) from the processed size
to the input size before thresholding/argmax. When the model's output is smaller than its input (valid
convolutions, as in the original U-Net), the pipeline uses the U-Net paper's overlap-tile strategy: it
mirror-pads the input by the lost margin and runs again, so the output covers every input pixel; if the
model cannot take the padded size, the output is placed at the centre of the input and the uncovered
border is given to class 0 (background) with probability 1 - documented, and reported with `border`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from transformers.pipelines.image_classification import ImageClassificationPipeline

from .errors import ConfigError, InputError
from .io import DicomImage, RasterImage, Volume, read_any

TASKS = ("image-classification", "image-segmentation")


def pipeline(task: str, model: Any, image_processor: Any = None, **kwargs: Any):
    """A ready pipeline for `task` with a medhub model (an instance, a local folder or a Hub/zoo id)."""
    if task not in TASKS:
        raise InputError(f"pipeline task {task!r}: medhub supports {list(TASKS)}")
    model = _resolve_model(model)
    processor = _resolve_processor(model, image_processor)
    if task == "image-segmentation":
        return SegmentationPipeline(model, processor, **kwargs)
    import transformers

    return transformers.pipeline("image-classification", model=model, image_processor=processor,
                                 pipeline_class=MedImageClassificationPipeline, **kwargs)


def _resolve_model(model: Any):
    if isinstance(model, (str, Path)):
        from .auto import MedModel

        model = MedModel.from_pretrained(model)
    if not hasattr(model, "config") or not callable(model):
        raise InputError(f"model: expected a medhub model or a model id/folder, got {type(model).__name__}")
    return model.eval()


def _resolve_processor(model: Any, image_processor: Any):
    processor = image_processor or getattr(model, "image_processor", None)
    if processor is None and hasattr(model, "default_image_processor"):
        processor = model.default_image_processor()
    if processor is None:
        raise ConfigError(
            f"{type(model).__name__} has no image processor (no preprocessor_config.json with the weights); "
            "pass image_processor=... to the pipeline"
        )
    return processor


class MedImageClassificationPipeline(ImageClassificationPipeline):
    """transformers' image classification, with inputs handed to the medhub processor unchanged."""

    def check_model_type(self, supported_models):
        from .modeling_utils import MedPreTrainedModel

        if not isinstance(self.model, MedPreTrainedModel):
            super().check_model_type(supported_models)

    def preprocess(self, image, timeout=None):
        inputs = self.image_processor(images=image, return_tensors="pt")
        return inputs.to(self.dtype)


class SegmentationPipeline:
    """Per-class masks at the input size from a medhub segmentation model (see the module docstring)."""

    def __init__(self, model: Any, image_processor: Any, threshold: float = 0.5):
        if getattr(image_processor, "do_center_crop", False):
            raise ConfigError(f"{type(image_processor).__name__}.do_center_crop=True: a cropped input cannot be "
                              "mapped back to the full image; use a processor without centre crop for segmentation")
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold={threshold}: expected a probability in (0, 1)")
        self.model = model.eval()
        self.image_processor = image_processor
        self.threshold = threshold
        self.spatial_dims = int(getattr(model.config, "spatial_dims", 2) or 2)

    def __call__(self, images: Any) -> list[dict] | list[list[dict]]:
        if isinstance(images, (list, tuple)):
            return [self._one(image) for image in images]
        return self._one(images)

    # -- one input -----------------------------------------------------------------------------------------
    def _one(self, image: Any) -> list[dict]:
        if isinstance(image, (str, Path)):
            image = read_any(image)  # read once: the processor and the output size both need it
        if self.spatial_dims == 3:
            if not hasattr(self.image_processor, "preprocess_subject"):
                raise ConfigError(f"{type(self.image_processor).__name__} cannot process volumes for a 3D model")
            array, _, affine = self.image_processor.preprocess_subject(image)
            probs, border = self._probabilities(torch.from_numpy(array[None]))
            return self._results(probs, border, size=None, affine=affine)
        pixel_values = self.image_processor(image, return_tensors="pt")["pixel_values"]
        probs, border = self._probabilities(pixel_values)
        size = _input_size_2d(image)
        probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False) if probs.shape[2:] != size else probs
        return self._results(probs, border, size=size)

    def _probabilities(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Class probabilities (1, K, *processed size); the border width filled as background (0 if none)."""
        logits = self._forward(pixel_values)
        in_size, out_size = tuple(pixel_values.shape[2:]), tuple(logits.shape[2:])
        border = 0
        if out_size != in_size:
            lost = [i - o for i, o in zip(in_size, out_size)]
            if any(n < 0 or n % 2 for n in lost):
                raise InputError(f"model output {out_size} is not a centred crop of its input {in_size}; cannot map it back")
            pad = [m for n in reversed(lost) for m in (n // 2, n // 2)]
            try:
                padded = self._forward(F.pad(pixel_values, pad, mode="reflect"))
            except Exception:
                padded = None
            if padded is not None and tuple(padded.shape[2:]) == in_size:
                logits = padded
            else:
                border = max(lost) // 2
                logits = _place_centre(logits, in_size)
        if logits.shape[1] == 1:
            return torch.sigmoid(logits), border
        return torch.softmax(logits, dim=1), border

    def _forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model(pixel_values=pixel_values).logits
        if logits.ndim != self.spatial_dims + 2 or logits.shape[0] != 1:
            raise InputError(f"model logits of shape {tuple(logits.shape)}; expected (1, num_labels, *spatial) "
                             f"with {self.spatial_dims} spatial dims")
        return logits.float()

    def _results(self, probs: torch.Tensor, border: int, size, affine=None) -> list[dict]:
        probs = probs[0]
        config = self.model.config
        if probs.shape[0] == 1:
            masks = [probs[0] > self.threshold]
            class_probs = [probs[0]]
        else:
            winner = probs.argmax(dim=0)
            masks = [winner == k for k in range(probs.shape[0])]
            class_probs = list(probs)
        results = []
        for k, (mask, p) in enumerate(zip(masks, class_probs)):
            area = int(mask.sum())
            mask_np = mask.numpy().astype(np.uint8)
            entry = {
                "label": config.id2label.get(k, str(k)) if hasattr(config, "id2label") else str(k),
                "score": float(p[mask].mean()) if area else None,
                "area": area,
                "mask": Image.fromarray(mask_np * 255) if size is not None else mask_np,
            }
            if affine is not None:
                entry["affine"] = affine
            if border:
                entry["border"] = border
            results.append(entry)
        return results


def _place_centre(logits: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Put a centred output crop back in an input-sized grid; uncovered voxels go to class 0 (background)."""
    full = torch.full((logits.shape[0], logits.shape[1], *size), -1e4, dtype=logits.dtype)
    if logits.shape[1] > 1:
        full[:, 0] = 1e4
    index = tuple(slice((s - o) // 2, (s - o) // 2 + o) for s, o in zip(size, logits.shape[2:]))
    full[(slice(None), slice(None)) + index] = logits
    return full


def _input_size_2d(image: Any) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, (DicomImage, RasterImage)):
        array = image.pixels
    elif isinstance(image, torch.Tensor):
        return tuple(image.shape[-2:]) if image.ndim == 3 else tuple(image.shape[:2])
    elif isinstance(image, np.ndarray):
        array = image
    elif isinstance(image, Volume):
        raise InputError(f"{image.source}: a 3-D volume was given to a 2D segmentation model")
    else:
        raise InputError(f"unsupported image type {type(image).__name__}")
    return tuple(array.shape[:2])


__all__ = ["MedImageClassificationPipeline", "SegmentationPipeline", "pipeline"]
