"""Inference pipelines: `medhub.pipeline(task, model)` for "image-classification" and "image-segmentation".

Classification delegates to transformers' `ImageClassificationPipeline` (top-k labels; softmax, or sigmoid
when `config.problem_type == "multi_label_classification"` or there is one label) of the logits divided by the
calibration temperature saved with the weights (as `model.infer` does), through
`medhub.classification_pipeline.MedImageClassificationPipeline`: paths go to the medhub processor as they are, so a
DICOM keeps its window and MONOCHROME1 flag instead of being opened by PIL as RGB. Importing medhub makes that class
transformers' "image-classification" pipeline, so `transformers.pipeline("image-classification", model=<medhub id,
folder or model instance>)` gives the same scores (the instance brings its own processor).

Segmentation (`SegmentationPipeline`) runs the same path as `medhub predict` (`medhub.predict.segment_image` /
`predict_subject`: the processor, then `model.infer`, the model's own inferer: overlap-tile for a valid-padding
U-Net, sliding windows, DeepMedic's tiling) and returns, per class, {"label", "mask", "score", "area"} with the
mask at the *input* size:
- one label: sigmoid, mask = probability > `threshold`; several labels: softmax, mask = argmax == class;
- "score" is the mean probability of the class inside its mask (None when the mask is empty);
- 2D masks are PIL "L" images (255 = class) of the original image's size; 3D masks are uint8 arrays
  (X, Y, Z) on the first channel's grid, whose `affine` each entry also carries.
A 3D input is a dict {channel name: file or Volume}, a list of those in `channel_names` order, one file or
Volume (single-channel models), or an array (C, X, Y, Z) / (X, Y, Z) taken to be on the processor's grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image

from .auto import MedModel
from .classification_pipeline import MedImageClassificationPipeline, register
from .errors import ConfigError, InputError
from .modeling_utils import MedPreTrainedModel
from .predict.inference import input_processor, predict_subject, segment_image

TASKS = ("image-classification", "image-segmentation")


def pipeline(task: str, model: Any, image_processor: Any = None, **kwargs: Any):
    """A ready pipeline for `task` with a medhub model (an instance, a local folder or a Hub/zoo id)."""
    if task not in TASKS:
        raise InputError(f"pipeline task {task!r}: medhub supports {list(TASKS)}")
    model = _resolve_model(model)
    processor = image_processor or input_processor(model)
    if processor is None:
        raise ConfigError(
            f"{type(model).__name__} has no image processor (no preprocessor_config.json with the weights); "
            "pass image_processor=... to the pipeline"
        )
    if task == "image-segmentation":
        return SegmentationPipeline(model, processor, **kwargs)
    return transformers.pipeline("image-classification", model=model, image_processor=processor,
                                 pipeline_class=MedImageClassificationPipeline, **kwargs)


def _resolve_model(model: Any):
    if isinstance(model, (str, Path)):
        model = MedModel.from_pretrained(model)
    if not isinstance(model, MedPreTrainedModel):
        raise InputError(f"model: expected a medhub model or a model id/folder, got {type(model).__name__}")
    return model.eval()


class SegmentationPipeline:
    """Per-class masks at the input size from a medhub segmentation model (see the module docstring)."""

    def __init__(self, model: Any, image_processor: Any, threshold: float = 0.5):
        if getattr(image_processor, "do_center_crop", False):
            raise ConfigError(f"{type(image_processor).__name__}.do_center_crop=True: a cropped input cannot be "
                              "mapped back to the full image; use a processor without centre crop for segmentation")
        if not 0.0 < threshold < 1.0:
            raise InputError(f"threshold={threshold}: expected a probability in (0, 1)")
        self.model = model.eval()
        self.model.image_processor = image_processor
        self.threshold = threshold

    def __call__(self, images: Any) -> list[dict] | list[list[dict]]:
        if isinstance(images, (list, tuple)) and not (self.model.spatial_dims == 3 and _is_channel_list(images)):
            return [self._one(image) for image in images]
        return self._one(images)

    def _one(self, image: Any) -> list[dict]:
        if self.model.spatial_dims == 3:
            result = predict_subject(self.model, _channels(self.model, image))
            labels = result.labels
            probs = torch.from_numpy(result.reference_probabilities())
            return self._results(probs, labels, size=None, affine=result.affine)
        prediction = segment_image(self.model, image)
        probs = torch.from_numpy(prediction.probs)
        return self._results(probs, None, size=prediction.display.shape)

    def _results(self, probs: torch.Tensor, labels: np.ndarray | None, size, affine=None) -> list[dict]:
        config = self.model.config
        if probs.shape[0] == 1:
            masks = [probs[0] > self.threshold]
            class_probs = [probs[0]]
        else:
            winner = torch.from_numpy(labels.astype(np.int64)) if labels is not None else probs.argmax(dim=0)
            masks = [winner == k for k in range(probs.shape[0])]
            class_probs = list(probs)
        results = []
        for k, (mask, p) in enumerate(zip(masks, class_probs)):
            area = int(mask.sum())
            mask_np = mask.numpy().astype(np.uint8)
            entry = {
                "label": config.id2label.get(k, str(k)),
                "score": float(p[mask].mean()) if area else None,
                "area": area,
                "mask": Image.fromarray(mask_np * 255) if size is not None else mask_np,
            }
            if affine is not None:
                entry["affine"] = affine
            results.append(entry)
        return results


def _is_channel_list(images: Any) -> bool:
    """A list is one subject's channels (files or Volumes), not a batch of subjects, unless its items are
    themselves subjects (dicts or lists)."""
    return not any(isinstance(item, (Mapping, list, tuple)) for item in images)


def _channels(model, image: Any) -> list | Mapping:
    if isinstance(image, Mapping):
        return image
    if isinstance(image, (list, tuple)):
        return list(image)
    if isinstance(image, np.ndarray) and image.ndim == 4:
        return list(image)
    return [image]


register()  # transformers.pipeline("image-classification", ...) runs medhub models as medhub.pipeline does

__all__ = ["MedImageClassificationPipeline", "SegmentationPipeline", "pipeline"]
