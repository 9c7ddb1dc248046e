"""Training recipes: a readable YAML file with four sections and a seed.

    name: unet-isbi2012-quick
    seed: 0
    model:                       # a medhub model type and its config fields ...
      type: unet                 # (or medhub-unet); see `medhub.MedModel.model_types()`
      config: {base_width: 8, depth: 2, padding: same, loss: ce}
      # pretrained: medhub/chexnet   ... or a pretrained id/folder (then no `config`)
    data: {...}                  # see medhub.training.data.load_split; plus `collator:` options
    training: {...}              # a subset of transformers.TrainingArguments (see TRAINING_KEYS)
    evaluation:
      metric: mean_dice          # metric_for_best_model and early stopping
      threshold: 0.5             # classification: a number, or `validation` (chosen on validation only)
      early_stopping_patience: 3

Unknown keys are errors naming the file and the key, so a typo never silently trains something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..logging_utils import get_logger

logger = get_logger("training")

SECTIONS = ("name", "seed", "model", "data", "training", "evaluation")
MODEL_KEYS = ("type", "config", "pretrained", "revision")
DATA_KEYS = ("name", "path", "options", "train_split", "eval_split", "limit_train", "limit_eval", "shuffle_before_limit",
             "crop", "transforms", "collator", "patches")
COLLATOR_KEYS = ("rescale_factor", "mean", "std", "label_values", "multi_label", "resize")
EVALUATION_KEYS = ("metric", "greater_is_better", "threshold", "threshold_criterion", "early_stopping_patience",
                   "early_stopping_threshold", "batch_size")
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


@dataclass
class Recipe:
    name: str
    seed: int = 0
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "<dict>") -> "Recipe":
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: a recipe is a mapping with sections {list(SECTIONS)}, "
                              f"got {type(values).__name__}")
        _check_keys(values, SECTIONS, source, "")
        for section in ("model", "data", "training", "evaluation"):
            if not isinstance(values.get(section, {}) or {}, dict):
                raise ConfigError(f"{source}: section `{section}` must be a mapping")
        model = dict(values.get("model") or {})
        data = dict(values.get("data") or {})
        training = dict(values.get("training") or {})
        evaluation = dict(values.get("evaluation") or {})
        _check_keys(model, MODEL_KEYS, source, "model.")
        _check_keys(data, DATA_KEYS, source, "data.")
        _check_keys(data.get("collator") or {}, COLLATOR_KEYS, source, "data.collator.")
        _check_keys(training, TRAINING_KEYS, source, "training.")
        _check_keys(evaluation, EVALUATION_KEYS, source, "evaluation.")
        if bool(model.get("type")) == bool(model.get("pretrained")):
            raise ConfigError(f"{source}: model: give exactly one of `type` (a new model) or `pretrained` (an id "
                              f"or folder), got {sorted(model)}")
        if not (data.get("name") or data.get("path")):
            raise ConfigError(f"{source}: data: expected `name` (a medhub.data dataset) or `path` (a folder)")
        seed = values.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{source}: seed={seed!r}: expected an integer")
        name = values.get("name") or Path(source).stem
        return cls(name=str(name), seed=seed, model=model, data=data, training=training,
                   evaluation=evaluation, source=source)

    @property
    def train_split(self) -> str:
        return self.data.get("train_split", "train")

    @property
    def eval_split(self) -> str:
        return self.data.get("eval_split", "validation")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "model": self.model, "data": self.data,
                "training": self.training, "evaluation": self.evaluation}


def load_recipe(path: str | Path) -> Recipe:
    """Read and check a YAML recipe file."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if isinstance(values, dict) and "zoo" in values:
        # A zoo recipe (recipes/zoo/): its `zoo:` section (card facts, zoo-only training-set handling) is read by
        # `medhub zoo build`; `medhub train` trains the plain recipe and says what it leaves out.
        values = dict(values)
        zoo = values.pop("zoo") or {}
        used = sorted(k for k in ("class_weights", "augment", "random_crop", "weight_map") if zoo.get(k))
        if used:
            logger.warning("%s: the zoo section's %s apply only in `medhub zoo build`; `medhub train` trains "
                           "without them", path, used)
    return Recipe.from_dict(values, source=str(path))


def build_model(recipe: Recipe):
    """A new model of `model.type` with `model.config` fields, or `model.pretrained` loaded (with overrides)."""
    from ..auto import MODEL_REGISTRY, MedConfig, MedModel

    spec = recipe.model
    overrides = dict(spec.get("config") or {})
    if spec.get("pretrained"):
        if overrides:
            raise ConfigError(f"{recipe.source}: model.config cannot change a pretrained model's config "
                              f"({sorted(overrides)}); convert it first (medhub convert --num-labels ...)")
        model = MedModel.from_pretrained(spec["pretrained"], revision=spec.get("revision"))
        model.train()
        return model
    model_type = str(spec["type"])
    if model_type not in MODEL_REGISTRY and f"medhub-{model_type}" in MODEL_REGISTRY:
        model_type = f"medhub-{model_type}"
    if model_type not in MODEL_REGISTRY:
        raise ConfigError(f"{recipe.source}: model.type={spec['type']!r}: expected one of "
                          f"{sorted(t.removeprefix('medhub-') for t in MODEL_REGISTRY)}")
    try:
        config = MedConfig.for_model(model_type, **overrides)
    except ConfigError as err:
        raise ConfigError(f"{recipe.source}: model.config: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{recipe.source}: model.config: {' '.join(str(err).split())}") from None
    return MedModel.from_config(config)


def _check_keys(values: dict, allowed: tuple[str, ...], source: str, prefix: str) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: unknown recipe key(s) {[prefix + k for k in unknown]}; "
                          f"expected some of {list(allowed)}")
