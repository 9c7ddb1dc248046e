"""One input through the model: read it, apply the processor saved with the weights, run `model.infer` (the
model's inferer, see `medhub.inference.inferers`) and map the prediction back to the input's own grid.

- `classify_image(model, image)`: probabilities (K,) and the top label's heatmap (CAM for models ending in global
  average pooling + a linear `classifier` / `fc`, else Grad-CAM) over the image as the model sees it;
- `segment_image(model, image)`: a label map (H, W) at the image's own size (probabilities resized bilinearly
  from the processor's size), plus cell instances for weights that name a post-processing;
- `segment_subject(model, channels, mask=None)`: a label volume in the first channel's geometry (labels mapped
  by nearest neighbour through the processed and the input affines), restricted to the processor's ROI mask.

Preprocessing: `model.image_processor` (saved with the weights), else the family's default processor, else for
2D images greyscale in [0, 1] at their own size (DICOM window / VOI LUT and MONOCHROME1 applied), replicated for
3-channel models. `medhub predict`, `medhub evaluate`, the pipelines and the Spaces all come through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from ..errors import InputError
from ..inference import cell_instances, labels_from_probabilities
from ..inference.inferers import resize_probabilities
from ..interpret import cams_from_features, class_activation_map, grad_cam
from ..io import Volume, read_any
from ..processing import RadiographImageProcessor, VolumeImageProcessor


@dataclass
class ImagePrediction:
    """display: the image as uint8 (H, W) grey; probs: per-label probabilities (K,) or (K, H, W); labels
    (H, W) or heatmap (H, W); instances: cell labels (H, W) for weights with `weights_info["instances"]`."""

    display: np.ndarray
    probs: np.ndarray
    labels: np.ndarray | None = None
    heatmap: np.ndarray | None = None
    label_index: int | None = None
    instances: np.ndarray | None = None


@dataclass
class VolumePrediction:
    """labels (X, Y, Z) on the `reference` grid (the first channel's, whose affine is `affine`); probabilities
    (K, ...) on the processed grid (`grid_affine`; the same grid unless the processor reorients or resamples)."""

    labels: np.ndarray
    probs: torch.Tensor
    affine: np.ndarray
    reference: Volume
    grid_affine: np.ndarray

    def reference_probabilities(self) -> np.ndarray:
        """The probabilities (K, X, Y, Z) on the reference grid (trilinear where the grids differ)."""
        return np.stack([to_reference_grid(p, self.grid_affine, self.reference, order=1) for p in self.probs.numpy()])


def channel_names(model) -> list[str]:
    """The model's input channel names (config.channel_names, else the processor's, else none)."""
    names = getattr(model.config, "channel_names", None)
    processor = getattr(model, "image_processor", None)
    processor_names = getattr(processor, "channel_names", None) or []
    if not names and len(processor_names) == model.config.in_channels:
        names = processor_names
    return list(names or [])


def expected_channels(model) -> str:
    names = channel_names(model)
    return f"{model.config.in_channels} channel(s)" + (f" {names}" if names else "")


def input_processor(model):
    """model.image_processor, else the family default (None when the family has none for this config)."""
    return getattr(model, "image_processor", None) or model.default_image_processor()


# -- 2D ---------------------------------------------------------------------------------------------------
def _plain_2d_processor(model) -> RadiographImageProcessor:
    if model.config.in_channels not in (1, 3):
        raise InputError(f"the model expects {expected_channels(model)}; medhub reads a 2D image as one greyscale "
                         "channel (replicated for 3-channel models)")
    return RadiographImageProcessor(num_channels=model.config.in_channels, do_resize=False, do_normalize=False)


def load_image(model, image: Any):
    """(the image as read, its processor, pixel_values (1, C, h, w), display uint8 (H, W) at the input size)."""
    where = str(image) if isinstance(image, (str, Path)) else "image"
    if isinstance(image, (str, Path)):
        image = read_any(image)
    if isinstance(image, Volume):
        raise InputError(f"{image.source or where}: a 3-D volume {image.shape}; this model "
                         f"({type(model).__name__}) takes 2D images")
    processor = input_processor(model) or _plain_2d_processor(model)
    pixel_values = processor(image, return_tensors="pt")["pixel_values"]
    if pixel_values.ndim != 4 or pixel_values.shape[1] != model.config.in_channels:
        raise InputError(f"{where}: preprocessed to {pixel_values.shape[1]} channel(s); the model expects "
                         f"{expected_channels(model)}")
    display = RadiographImageProcessor(do_resize=False, do_normalize=False).display_image(image)
    return image, processor, pixel_values, display


def segment_image(model, image: Any, *, tta: bool = False, **overrides: Any) -> ImagePrediction:
    """Label map (H, W) at the image's own size for a 2D segmenter; overrides: InferenceSettings fields."""
    _, processor, pixel_values, display = load_image(model, image)
    if getattr(processor, "do_center_crop", False):
        raise InputError(f"{type(processor).__name__}.do_center_crop=True: a cropped input cannot be mapped back "
                         "to the whole image; segment with a processor without centre crop")
    probs = resize_probabilities(model.infer(pixel_values, tta=tta, **overrides), display.shape)[0]
    return ImagePrediction(display=display, probs=probs.numpy(), labels=labels_from_probabilities(probs),
                           instances=cell_instances(model, probs))


def classify_image(model, image: Any, *, tta: bool = False, **overrides: Any) -> ImagePrediction:
    """Probabilities (K,) and the top label's heatmap (CAM, else Grad-CAM) over the image."""
    image, processor, pixel_values, display = load_image(model, image)
    probs, heatmaps = classify_batch(model, pixel_values, heatmaps=True, tta=tta, **overrides)
    display, heatmap = heatmap_on_display(processor, image, display, heatmaps[0])
    return ImagePrediction(display=display, probs=probs[0].numpy(), heatmap=heatmap, label_index=int(probs[0].argmax()))


def cam_classifier(model) -> str | None:
    """The name of the model's linear head when the model ends in GAP + that layer (CAM applies), else None."""
    for name in ("classifier", "fc"):
        if isinstance(getattr(model, name, None), torch.nn.Linear):
            return name
    return None


def classify_batch(model, pixel_values: torch.Tensor, *, heatmaps: bool = False, tta: bool = False,
                   precision: str | None = None, **overrides: Any) -> tuple[torch.Tensor, list[np.ndarray | None]]:
    """Probabilities (N, K) of a batch and, when asked, each image's top-label heatmap at the processed size.

    For GAP + linear models without TTA the CAM comes from the same forward pass as the probabilities (the
    final feature maps are its last hidden state; the probabilities are what `model.infer` gives); otherwise
    `model.infer`, then a CAM / Grad-CAM per image."""
    options = {key: value for key, value in dict(overrides, precision=precision).items() if value is not None}
    torch_model = getattr(model, "pytorch_model", model)  # heatmaps hook PyTorch layers (onnxruntime backend)
    name = cam_classifier(torch_model) if heatmaps else None
    if name is not None and not tta and torch_model is model:
        probs, maps = model.inferer(**options).probabilities_with_features(model, pixel_values)
        head = getattr(model, name)
        if maps is not None and maps.ndim == pixel_values.ndim and maps.shape[1] == head.in_features:
            return probs, cams_from_features(head, maps.float(), probs.argmax(dim=1).tolist(),
                                             tuple(pixel_values.shape[2:]))
    else:
        probs = model.infer(pixel_values, tta=tta, **options)
    if not heatmaps:
        return probs, [None] * len(probs)
    x = pixel_values.to(next(torch_model.parameters()).device, next(torch_model.parameters()).dtype)
    return probs, [_one_heatmap(torch_model, x[i:i + 1], int(probs[i].argmax()), name) for i in range(len(x))]


def _one_heatmap(model, x: torch.Tensor, index: int, classifier_name: str | None) -> np.ndarray:
    if classifier_name is not None:
        try:
            return class_activation_map(model, x, index, classifier_name=classifier_name)
        except InputError:
            pass  # not GAP + linear after all: Grad-CAM works for any differentiable classifier
    return grad_cam(model, x, index)


def heatmap_on_display(processor, image: Any, display: np.ndarray, heatmap: np.ndarray):
    """(display, heatmap at the display's size): a centre-cropping processor's heatmap covers the crop only, so
    the crop is shown."""
    if getattr(processor, "do_center_crop", False) and hasattr(processor, "display_image"):
        display = processor.display_image(image)
    heatmap = resize_probabilities(torch.from_numpy(heatmap)[None, None], display.shape)[0, 0].numpy()
    return display, heatmap


# -- 3D ---------------------------------------------------------------------------------------------------
def _volume(item: Any, model, what: str) -> Volume | np.ndarray:
    """A channel or mask as a `Volume` (files are read); arrays pass as they are (no geometry: the processor
    takes them to be on its grid already)."""
    if isinstance(item, (Volume, np.ndarray)):
        return item
    if isinstance(item, torch.Tensor):
        return item.detach().cpu().numpy()
    volume = read_any(item)
    if not isinstance(volume, Volume):
        raise InputError(f"{what} {item}: a 2D image; this model ({type(model).__name__}) takes 3D volumes "
                         "(NIfTI files or DICOM series folders)")
    return volume


def load_subject(model, channels: Sequence[Any] | Mapping[str, Any], mask: Any = None, where: str = "subject"):
    """(ProcessedSubject, the first channel's Volume) for one subject: `channels` in `channel_names` order (or a
    dict name -> file/Volume, which may also hold the ROI mask under the processor's `mask_name`), `mask` the ROI
    mask file/Volume (else the processor's fallback)."""
    processor = input_processor(model)
    if isinstance(channels, Mapping):
        mask_name = getattr(processor, "mask_name", None)
        if mask is None and mask_name in channels:
            mask = channels[mask_name]
        names = channel_names(model)
        missing = [n for n in names if n not in channels]
        if missing:
            raise InputError(f"{where}: no file for channel(s) {missing}; the model expects {expected_channels(model)}")
        channels = [channels[n] for n in names]
    if len(channels) != model.config.in_channels:
        raise InputError(f"{where}: {len(channels)} channel file(s) given; the model expects "
                         f"{expected_channels(model)} - give a subject folder or the channel files joined by commas, "
                         "in that order")
    volumes = [_volume(c, model, "channel") for c in channels]
    if not isinstance(processor, VolumeImageProcessor):
        names = channel_names(model) or [f"channel_{i}" for i in range(len(volumes))]
        processor = VolumeImageProcessor(channel_names=names, orientation=None)  # volumes as they are
    if len(processor.channel_names) != len(volumes):
        raise InputError(f"{where}: the processor expects channels {processor.channel_names}; got {len(volumes)} files")
    mask_volume = _volume(mask, model, "mask") if mask is not None else None
    subject = processor.preprocess_subject(dict(zip(processor.channel_names, volumes)), mask=mask_volume)
    first = volumes[0]
    if not isinstance(first, Volume):  # an array: on the processed grid, identity geometry
        first = Volume(np.asarray(first, dtype=np.float32), np.eye(4), (1.0, 1.0, 1.0), "array")
    return subject, first


def to_reference_grid(array: np.ndarray, affine: np.ndarray, reference: Volume, order: int = 0) -> np.ndarray:
    """A volume on the processed grid (`affine`) resampled onto the reference volume's grid (nearest for labels)."""
    if array.shape == reference.shape and np.allclose(affine, reference.affine, atol=1e-4):
        return array
    # input voxel -> world -> processed voxel
    matrix = np.linalg.inv(affine) @ reference.affine
    return ndimage.affine_transform(array, matrix, output_shape=reference.shape, order=order, mode="constant",
                                    cval=0).astype(array.dtype)


def predict_subject(model, channels: Sequence[Any] | Mapping[str, Any], mask: Any = None, *, where: str = "subject",
                    tta: bool = False, **overrides: Any) -> VolumePrediction:
    """Labels and probabilities of one subject on its first channel's grid (see the module docstring)."""
    subject, reference = load_subject(model, channels, mask, where)
    pixel_values = torch.from_numpy(np.ascontiguousarray(subject.pixel_values, dtype=np.float32))[None]
    probs = model.infer(pixel_values, roi_mask=subject.roi_mask, tta=tta, **overrides)[0]
    labels = to_reference_grid(labels_from_probabilities(probs), subject.affine, reference, order=0)
    return VolumePrediction(labels, probs, np.asarray(reference.affine), reference, np.asarray(subject.affine))


def segment_subject(model, channels: Sequence[Any] | Mapping[str, Any], mask: Any = None, *,
                    where: str | None = None, tta: bool = False, **overrides: Any) -> tuple[np.ndarray, np.ndarray]:
    """(label volume, affine) in the geometry of the first channel file."""
    where = where or str(next(iter(channels.values())) if isinstance(channels, Mapping) else channels[0])
    result = predict_subject(model, channels, mask, where=where, tta=tta, **overrides)
    return result.labels, result.affine


__all__ = ["ImagePrediction", "VolumePrediction", "cam_classifier", "channel_names", "classify_batch", "classify_image",
           "heatmap_on_display", "expected_channels",
           "input_processor", "load_image", "load_subject", "predict_subject", "segment_image", "segment_subject",
           "to_reference_grid"]
