"""Where does a classifier look? Class activation maps (CAM) and Grad-CAM as heatmaps in [0, 1].

CAM (Zhou et al. 2016; CheXNet fig. 1): for a network ending in global average pooling and a linear layer,
the map of class c is sum_k w_ck * f_k(x, y), the final feature maps weighted by that class's classifier
weights. Grad-CAM (Selvaraju et al. 2017) works for any differentiable classifier: the weights are the
spatial means of d(logit_c)/d(activation) at a chosen layer. For a linear head on pooled features the
gradient is w_ck / (h * w), so after normalisation Grad-CAM at the final feature maps equals CAM.

Both return a numpy array at the input's spatial size ((H, W), or (D, H, W) for 3D), ReLU'd, upsampled
(bi/trilinear) and min-max normalised to [0, 1]; `overlay_heatmap` blends one onto the image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def class_activation_map(model: nn.Module, pixel_values: torch.Tensor, class_index: int | str | None = None,
                         classifier_name: str = "classifier") -> np.ndarray:
    """The CAM of one image for `class_index` (an index, a label name, or None for the top-scoring class).

    `model` must end in global average pooling and the linear layer `classifier_name`, and return the final
    feature maps (those that are pooled) as the last of its `hidden_states` (medhub classifiers do).
    """
    pixel_values = _single_image(pixel_values)
    classifier = _get_module(model, classifier_name)
    if not isinstance(classifier, nn.Linear):
        raise InputError(f"classifier_name={classifier_name!r}: CAM needs a linear layer, got "
                         f"{type(classifier).__name__}")
    with torch.no_grad():
        output = model(pixel_values, output_hidden_states=True)
        index = _class_index(model, output.logits, class_index)
    return cams_from_features(classifier, output.hidden_states[-1], [index], pixel_values.shape[2:])[0]


def cams_from_features(classifier: nn.Linear, maps: torch.Tensor, indices: list[int], size) -> list[np.ndarray]:
    """CAMs of a batch from the final feature maps (N, K, *spatial) that a forward pass already computed (no
    second forward): image i's map for class indices[i], as heatmaps at `size` (the input's spatial size)."""
    if maps.shape[1] != classifier.in_features:
        raise InputError(f"CAM: the last hidden state has {maps.shape[1]} channels but the classifier expects "
                         f"{classifier.in_features} pooled features; this model is not GAP + linear")
    with torch.no_grad():
        weights = classifier.weight[torch.as_tensor(indices, device=maps.device)].to(maps.dtype)
        cams = torch.einsum("nk,nk...->n...", weights, maps)
    return [_to_heatmap(cam, size) for cam in cams]


def grad_cam(model: nn.Module, pixel_values: torch.Tensor, class_index: int | str | None = None,
             target_layer: str | nn.Module | None = None) -> np.ndarray:
    """The Grad-CAM of one image for `class_index` at `target_layer` (a module or its dotted name).

    Default layer: the model's `cam_target_layer` attribute if it has one (CheXNet: the final feature maps),
    otherwise its last convolution. The model's train/eval mode is left as it is: call `model.eval()` first
    for inference behaviour of batch norm and dropout.
    """
    pixel_values = _single_image(pixel_values)
    layer = _target_module(model, target_layer)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            # An input that needs a gradient keeps the graph even when every parameter is frozen.
            output = model(pixel_values.detach().clone().requires_grad_(True))
            logits = output.logits if hasattr(output, "logits") else output
            index = _class_index(model, logits, class_index)
            if not captured or not isinstance(captured[-1], torch.Tensor):
                raise InputError(f"target_layer: {type(layer).__name__} did not output a tensor during the "
                                 "forward pass")
            activation = captured[-1]
            (gradient,) = torch.autograd.grad(logits[0, index], activation)
    finally:
        handle.remove()
    activation, gradient = activation.detach()[0], gradient[0]
    weights = gradient.flatten(1).mean(dim=1)
    cam = torch.einsum("k,k...->...", weights, activation)
    return _to_heatmap(cam, pixel_values.shape[2:])


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """An RGB uint8 picture: `image` (H, W) grey or (H, W, 3) RGB under a jet-coloured `heatmap` (H, W) in [0, 1].

    A non-uint8 image is min-max scaled to 0..255 for display; alpha is the weight of the heatmap colour.
    """
    image = np.asarray(image)
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image: expected (H, W) grey or (H, W, 3) RGB, got shape {image.shape}")
    if heatmap.shape != image.shape[:2]:
        raise InputError(f"heatmap: expected shape {image.shape[:2]} like the image, got {heatmap.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha={alpha!r}: expected a blending weight in [0, 1]")
    rgb = image.astype(np.float64) if image.dtype == np.uint8 else _scale_to_255(image.astype(np.float64))
    blended = (1.0 - alpha) * rgb + alpha * 255.0 * jet_colormap(heatmap)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def jet_colormap(values: np.ndarray) -> np.ndarray:
    """The classic 'jet' colours (blue -> cyan -> yellow -> red) for values in [0, 1], as floats in [0, 1]."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)[..., None]
    centres = np.array([3.0, 2.0, 1.0])  # red, green, blue peak at 3/4, 1/2, 1/4
    return np.clip(1.5 - np.abs(4.0 * v - centres), 0.0, 1.0)


# -- helpers --------------------------------------------------------------------------------------------
def _single_image(pixel_values: torch.Tensor) -> torch.Tensor:
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.ndim < 3:
        shape = tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise InputError(f"pixel_values: expected one image (1, C, H, W) or (C, H, W), got {shape}")
    if pixel_values.ndim == 3:
        pixel_values = pixel_values[None]
    if pixel_values.shape[0] != 1:
        raise InputError(f"pixel_values: CAMs are computed one image at a time; got a batch of {pixel_values.shape[0]}")
    return pixel_values


def _class_index(model: nn.Module, logits: torch.Tensor, class_index: int | str | None) -> int:
    num_classes = logits.shape[-1]
    if class_index is None:
        return int(logits[0].argmax())
    if isinstance(class_index, str):
        label2id = getattr(getattr(model, "config", None), "label2id", None) or {}
        if class_index not in label2id:
            raise InputError(f"class_index={class_index!r}: not a label of this model; labels: {sorted(label2id)}")
        return int(label2id[class_index])
    if not 0 <= int(class_index) < num_classes:
        raise InputError(f"class_index={class_index!r}: expected 0..{num_classes - 1}")
    return int(class_index)


def _get_module(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise InputError(f"{name!r}: no such module in {type(model).__name__}") from None


def _target_module(model: nn.Module, target_layer: str | nn.Module | None) -> nn.Module:
    if isinstance(target_layer, nn.Module):
        return target_layer
    if target_layer is None:
        target_layer = getattr(model, "cam_target_layer", None)
    if target_layer is None:
        convs = [name for name, module in model.named_modules() if isinstance(module, _CONV_TYPES)]
        if not convs:
            raise InputError(f"target_layer: {type(model).__name__} has no convolution; name the layer to explain")
        target_layer = convs[-1]
    return _get_module(model, target_layer)


def _to_heatmap(cam: torch.Tensor, size: torch.Size) -> np.ndarray:
    """ReLU, upsample to the input size, min-max normalise to [0, 1] (all zeros when the map is flat)."""
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[cam.ndim]
    cam = F.interpolate(F.relu(cam.float())[None, None], size=tuple(size), mode=mode, align_corners=False)[0, 0]
    low, high = cam.min(), cam.max()
    cam = (cam - low) / (high - low) if high > low else torch.zeros_like(cam)
    return cam.cpu().numpy()


def _scale_to_255(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) * 255.0 if high > low else np.zeros_like(image)
