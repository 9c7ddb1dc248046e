"""A test-only medhub model type, "medhub-test-tiny": one conv and one linear layer.

Hub tests use it instead of a real family (those land in parallel and are slower to build); it goes through
exactly the same registry, loading and saving code as every family. Importing this module registers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.image_processing_base import ImageProcessingMixin
from transformers.utils import ModelOutput

import medhub
from medhub.configuration_utils import MAX_WIDTH, check_int

MODEL_TYPE = "medhub-test-tiny"


class TinyConfig(medhub.MedPreTrainedConfig):
    """width: channels of the single conv layer (changing it changes every weight shape)."""

    model_type = MODEL_TYPE

    width: int = 4

    def check(self) -> None:
        check_int(self, "width", 1, MAX_WIDTH)


@dataclass
class TinyOutput(ModelOutput):
    logits: torch.Tensor | None = None


class TinyProcessor(ImageProcessingMixin):
    """Multiplies pixels by `scale`; exists so pushes and downloads carry a preprocessor_config.json."""

    model_input_names = ["pixel_values"]

    def __init__(self, scale: float = 1.0, **kwargs):
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        self.scale = scale


class TinyModel(medhub.MedPreTrainedModel):
    config_class = TinyConfig

    def default_image_processor(self) -> TinyProcessor:
        return TinyProcessor(scale=0.5)

    def __init__(self, config: TinyConfig):
        super().__init__(config)
        self.conv = nn.Conv2d(config.in_channels, config.width, kernel_size=3, padding=1)
        self.classifier = nn.Linear(config.width, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor) -> TinyOutput:
        self.validate_pixel_values(pixel_values, spatial_dims=2)
        features = torch.relu(self.conv(pixel_values)).mean(dim=(2, 3))
        return TinyOutput(logits=self.classifier(features))


medhub.register_model(TinyConfig, TinyModel, task="image-classification")
medhub.register_processor(None, TinyProcessor)  # AutoImageProcessor wants BaseImageProcessor


def make_model(seed: int = 0, **config) -> TinyModel:
    """A tiny model with deterministic random weights (distinct per seed)."""
    torch.manual_seed(seed)
    model = TinyModel(TinyConfig(**config))
    with torch.no_grad():  # post_init zeroes biases; randomise them too so every byte is checked
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model.eval()


def digest(model) -> str:
    """sha256 over every state-dict key, dtype, shape and byte: equal digests mean bit-identical weights."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
