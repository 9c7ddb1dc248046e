"""The registry of medhub model types and image processors, and their registration with transformers.

Each family registers its config and task model once (`register_model`, in `models/<family>/__init__.py`),
which also registers them with transformers' `AutoConfig`, `AutoModel`, the task's Auto class and, through
the model class's `processor_class`, `AutoImageProcessor`; so Auto classes, `Trainer` and pipelines work on
medhub models after `import medhub`. Processors register by class name (`register_processor`), which is what
`preprocessor_config.json`'s `image_processor_type` names. This module imports nothing else of medhub's, so
every other module can read the registry without import cycles.
"""

from __future__ import annotations

import transformers
from transformers import AutoConfig, AutoImageProcessor, AutoModel
from transformers.utils import logging as hf_logging

CONFIG_REGISTRY: dict[str, type] = {}
MODEL_REGISTRY: dict[str, type] = {}
PROCESSOR_REGISTRY: dict[str, type] = {}

TASK_AUTO_CLASSES = {
    "image-classification": "AutoModelForImageClassification",
    "image-segmentation": "AutoModelForSemanticSegmentation",
}


def register_model(config_class: type, model_class: type, task: str | None = None,
                   extra_models: tuple[type, ...] = ()) -> None:
    """Register `model_class` as the model for `config_class.model_type` (and with transformers' Auto classes).

    task: the transformers task ("image-classification", "image-segmentation"; default the model class's
    `pipeline_tag`); extra_models[0]: the backbone class `AutoModel` should give (default `model_class`). The
    model class's `processor_class`, when set, becomes the config's `AutoImageProcessor`."""
    model_type = config_class.model_type
    CONFIG_REGISTRY[model_type] = config_class
    MODEL_REGISTRY[model_type] = model_class
    AutoConfig.register(model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, extra_models[0] if extra_models else model_class, exist_ok=True)
    task = task or getattr(model_class, "pipeline_tag", None)
    if task in TASK_AUTO_CLASSES:
        getattr(transformers, TASK_AUTO_CLASSES[task]).register(config_class, model_class, exist_ok=True)
    processor_class = getattr(model_class, "processor_class", None)
    if processor_class is not None:
        register_processor(config_class, processor_class)


def register_processor(config_class: type | None, processor_class: type) -> None:
    """Register an image processor by its class name (and with AutoImageProcessor for `config_class`)."""
    PROCESSOR_REGISTRY[processor_class.__name__] = processor_class
    if config_class is not None:
        # Registering walks transformers' processor table, which warns about torchvision-only processors.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            AutoImageProcessor.register(config_class, slow_image_processor_class=processor_class, exist_ok=True)
        finally:
            hf_logging.set_verbosity(verbosity)


def model_type_of(name: str) -> str | None:
    """The registered model_type for `name` ("unet" or "medhub-unet"), or None."""
    for candidate in (name, f"medhub-{name}"):
        if candidate in MODEL_REGISTRY:
            return candidate
    return None


__all__ = ["CONFIG_REGISTRY", "MODEL_REGISTRY", "PROCESSOR_REGISTRY", "model_type_of", "register_model",
           "register_processor"]
