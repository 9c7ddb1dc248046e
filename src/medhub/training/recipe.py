"""Recipes: one readable YAML schema for `medhub train` and `medhub zoo build`, 2D and 3D.

    name: unet-isbi2012-quick
    seed: 0
    model:                       # a medhub model type and its config fields ...
      type: unet                 # (or medhub-unet); see `medhub.MedModel.model_types()`
      config: {base_width: 8, depth: 2, padding: same, loss: ce}
      # pretrained: medhub/chexnet   ... or a pretrained id/folder (then no `config`)
    processor:                   # the image processor saved with the weights AND applied to the training data
      type: GreyscaleImageProcessor     # default: the model family's processor class
      do_normalize: true
      image_mean: [0.5]
      image_std: [0.2]
    data:                        # see medhub.training.data
      name: isbi2012             # a medhub.data name, or `path:` a folder
      options: {val_slices: 4}   # the loader's own options
      label_values: {255: 1}     # label values mapped to class indices (here ISBI's 0/255 masks)
      augment: [{name: crop, size: [256, 256]}, {name: flip}, {name: elastic, sigma: 10}]   # train split only
      weight_map: {w0: 10, sigma: 5}   # the U-Net paper's weight maps of the training labels
      patches: {...}             # 3D: patches drawn from whole volumes (see medhub.training.patches3d)
    training: {...}              # a subset of transformers.TrainingArguments (TRAINING_KEYS), plus
      # class_weights: balanced  # classification: cross-entropy weighted by N / (K * count_k) of the train split
    evaluation:
      metric: mean_dice          # metric_for_best_model and early stopping
      threshold: validation      # classification: a number, or chosen on the validation split only
    inference:                   # how the model runs on whole images (saved with the weights)
      roi_size: [256, 256]       # medhub.inference.InferenceSettings fields, and
      instances: {method: membrane_watershed, seed_threshold: 0.9}   # cell instances of a membrane map (or
                                 # {method: nuclei_watershed, ...}: nuclei, medhub.inference.nuclei)
    card: {title: ..., license: ..., limitations: ...}   # facts of the model card (CARD_KEYS)

Unknown keys are errors naming the file and the key, so a typo never silently trains something else; the keys of
the older dialects (`data.collator`, `data.transforms`, `zoo:`) are refused with what replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..auto import MedConfig, MedModel
from ..errors import ConfigError
from ..inference import InferenceSettings, instance_method
from ..registry import MODEL_REGISTRY, PROCESSOR_REGISTRY, model_type_of

SECTIONS = ("name", "seed", "model", "processor", "data", "training", "evaluation", "inference", "card")
MODEL_KEYS = ("type", "config", "pretrained", "revision")
DATA_KEYS = ("name", "path", "options", "train_split", "eval_split", "limit_train", "limit_eval",
             "shuffle_before_limit", "crop", "augment", "label_values", "multi_label", "weight_map", "patches")
EVALUATION_KEYS = ("metric", "greater_is_better", "threshold", "threshold_criterion", "early_stopping_patience",
                   "early_stopping_threshold", "batch_size")
CARD_KEYS = ("title", "summary", "license", "datasets", "tags", "training_data", "limitations", "intended_use",
             "input", "output", "notes")
WEIGHT_MAP_KEYS = ("w0", "sigma", "class_balance")
# The TrainingArguments a recipe may set; everything else keeps medhub's defaults (see trainer.py).
TRAINING_KEYS = (
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size",
    "gradient_accumulation_steps", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
    "max_grad_norm", "optim", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps",
    "logging_steps", "logging_strategy", "eval_strategy", "eval_steps", "save_strategy", "save_steps",
    "save_total_limit", "load_best_model_at_end", "bf16", "fp16", "dataloader_num_workers", "use_cpu",
    "disable_tqdm", "full_determinism", "data_seed", "gradient_checkpointing", "torch_compile", "report_to",
    "ddp_backend", "fsdp", "fsdp_config", "label_smoothing_factor", "dataloader_drop_last", "push_to_hub",
)
MEDHUB_TRAINING_KEYS = ("class_weights",)
REPLACED = {  # keys of the older recipe dialects -> what replaces them
    "zoo": "the `card:` (title, licence, ...), `inference:` (roi_size, instances), `processor:` sections and "
           "data.augment / data.weight_map / training.class_weights",
    "data.collator": "a `processor:` section (intensity, resize: saved with the weights) and data.label_values",
    "data.transforms": "data.augment",
    "data.random_crop": "data.augment: [{name: crop, size: [...]}]",
    "data.patches.inference_size": "inference.roi_size",
}


@dataclass
class Recipe:
    name: str
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)
    processor: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "<dict>") -> Recipe:
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a recipe is a mapping with sections {list(SECTIONS)}, "
                              f"got {type(values).__name__}")
        _refuse_replaced(values, source)
        _check_keys(values, SECTIONS, source, "")
        sections = {}
        for section in ("model", "processor", "data", "training", "evaluation", "inference", "card"):
            value = values.get(section) or {}
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section `{section}` must be a mapping")
            sections[section] = dict(value)
        model, data = sections["model"], sections["data"]
        _check_keys(model, MODEL_KEYS, source, "model.")
        _check_keys(data, DATA_KEYS, source, "data.")
        _check_keys(sections["training"], TRAINING_KEYS + MEDHUB_TRAINING_KEYS, source, "training.")
        _check_keys(sections["evaluation"], EVALUATION_KEYS, source, "evaluation.")
        _check_keys(sections["card"], CARD_KEYS, source, "card.")
        _check_keys(data.get("weight_map") or {}, WEIGHT_MAP_KEYS, source, "data.weight_map.")
        if bool(model.get("type")) == bool(model.get("pretrained")):
            raise ConfigError(f"{source}: model: give exactly one of `type` (a new model) or `pretrained` (an id "
                              f"or folder), got {sorted(model)}")
        if not (data.get("name") or data.get("path")):
            raise ConfigError(f"{source}: data: expected `name` (a medhub.data dataset) or `path` (a folder)")
        if not isinstance(data.get("augment") or [], list):
            raise ConfigError(f"{source}: data.augment must be a list of {{name: ..., ...}} steps")
        if sections["training"].get("class_weights") not in (None, "balanced"):
            raise ConfigError(f"{source}: training.class_weights={sections['training']['class_weights']!r}: "
                              "expected `balanced`")
        inference = dict(sections["inference"])
        instances = inference.pop("instances", None)
        InferenceSettings.from_dict(inference, where=f"{source}: inference")
        if instances is not None:
            try:
                instance_method(instances)
            except Exception as err:  # InputError naming the key
                raise ConfigError(f"{source}: inference.instances: {err}") from None
        seed = values.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{source}: seed={seed!r}: expected an integer")
        name = values.get("name") or Path(source).stem
        return cls(name=str(name), seed=seed, source=source, **sections)

    @property
    def train_split(self) -> str:
        return self.data.get("train_split", "train")

    @property
    def eval_split(self) -> str:
        return self.data.get("eval_split", "validation")

    @property
    def inference_settings(self) -> dict[str, Any]:
        """The recipe's `inference:` section without `instances` (InferenceSettings fields)."""
        return {k: v for k, v in self.inference.items() if k != "instances"}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "model": self.model, "processor": self.processor,
                "data": self.data, "training": self.training, "evaluation": self.evaluation,
                "inference": self.inference, "card": self.card}


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a YAML recipe file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    return Recipe.from_dict(values, source=str(path))


def build_model(recipe: Recipe):
    """A new model of `model.type` with `model.config` fields, or `model.pretrained` loaded; with the recipe's
    processor attached (it is saved with the weights)."""
    spec = recipe.model
    overrides = dict(spec.get("config") or {})
    if spec.get("pretrained"):
        if overrides:
            raise ConfigError(f"{recipe.source}: model.config cannot change a pretrained model's config "
                              f"({sorted(overrides)}); convert it first (medhub convert --num-labels ...)")
        model = MedModel.from_pretrained(spec["pretrained"], revision=spec.get("revision"))
        model.config.weights_info = fine_tuning_info(model.config.weights_info, str(spec["pretrained"]))
        model.train()
    else:
        model_type = model_type_of(str(spec["type"]))
        if model_type is None:
            raise ConfigError(f"{recipe.source}: model.type={spec['type']!r}: expected one of "
                              f"{sorted(t.removeprefix('medhub-') for t in MODEL_REGISTRY)}")
        try:
            config = MedConfig.for_model(model_type, **overrides)
        except ConfigError as err:
            raise ConfigError(f"{recipe.source}: model.config: {err}") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{recipe.source}: model.config: {' '.join(str(err).split())}") from None
        model = MedModel.from_config(config)
    model.image_processor = build_processor(recipe, model)
    return model


# What a pretrained model's weights_info says about the model and its use (kept when it is fine-tuned); every
# other entry describes or measured the base weights (metrics, calibration temperature, threshold, uncertainty,
# repo id, training record) and would be wrong for the fine-tuned ones.
KEPT_WHEN_FINE_TUNED = ("license", "input", "output", "tags", "label_values", "inference", "instances", "patches")


def fine_tuning_info(info: dict[str, Any] | None, pretrained: str) -> dict[str, Any]:
    """The weights_info a model fine-tuned from `pretrained` starts with: the base's descriptive entries and
    `base_model`, its Hub id (the base's `repo_id`, else `pretrained` unless that is a local folder)."""
    info = dict(info or {})
    kept = {key: info[key] for key in KEPT_WHEN_FINE_TUNED if key in info}
    base = info.get("repo_id") or (None if Path(pretrained).exists() else pretrained)
    return {**kept, **({"base_model": str(base)} if base else {})}


def build_processor(recipe: Recipe, model):
    """The recipe's `processor:` (its `type` defaults to the family's processor class), else the model's own
    (a pretrained model's saved processor, or the family default)."""
    fields = dict(recipe.processor)
    if not fields:
        processor = getattr(model, "image_processor", None) or model.default_image_processor()
        if processor is None:
            raise ConfigError(f"{recipe.source}: {type(model).__name__} has no default image processor for this "
                              "config; add a `processor:` section")
        return processor
    kind = fields.pop("type", None) or fields.pop("image_processor_type", None)
    processor_class = PROCESSOR_REGISTRY.get(kind) if kind else model.processor_class
    if processor_class is None:
        raise ConfigError(f"{recipe.source}: processor.type={kind!r}: expected one of {sorted(PROCESSOR_REGISTRY)}")
    try:
        return processor_class.from_dict(fields)
    except ConfigError as err:
        raise ConfigError(f"{recipe.source}: processor: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{recipe.source}: processor: {' '.join(str(err).split())}") from None


def _refuse_replaced(values: dict, source: str) -> None:
    data = values.get("data") if isinstance(values.get("data"), dict) else {}
    patches = data.get("patches") if isinstance(data.get("patches"), dict) else {}
    present = {"zoo": "zoo" in values, "data.collator": "collator" in data, "data.transforms": "transforms" in data,
               "data.random_crop": "random_crop" in data, "data.patches.inference_size": "inference_size" in patches}
    old = [key for key, found in present.items() if found]
    if old:
        raise ConfigError(f"{source}: {old[0]} is no longer a recipe key; use {REPLACED[old[0]]} "
                          "(see medhub.training.recipe)")


def _check_keys(values: dict, allowed: tuple[str, ...], source: str, prefix: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: unknown recipe key(s) {[prefix + k for k in unknown]}; "
                          f"expected some of {list(allowed)}")
