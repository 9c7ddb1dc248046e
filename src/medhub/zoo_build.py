"""`medhub zoo build NAME`: train a zoo checkpoint from its recipe, store it in float16, evaluate the stored
weights with `medhub evaluate`, and write the card from what was measured. `medhub zoo push --org ORG`.

A zoo recipe (`recipes/zoo/<id>.yaml`) is a training recipe (see `medhub.training.recipe`) plus one `zoo:`
section with what the Trainer does not know: the card's facts and the training-set handling of the zoo

    zoo:
      title: ...                   # card title, summary, licence, datasets, limitations, intended use, input, output
      class_weights: balanced      # classification: cross-entropy weighted by N / (K * count_k) of the train split
      augment: [...]               # train-split augmentation (see AUGMENTATIONS), applied to every read row
      random_crop: [256, 256]      # segmentation: a random crop of each training image per read
      weight_map: {w0: 10, sigma: 5}   # U-Net paper weight maps of the training label maps (loss weighted_ce);
                                       # class_balance: false leaves out the class-frequency term w_c
      inference: {roi_size: [256, 256], overlap: 0.5}   # segmentation: whole-image sliding-window evaluation
      instances: {method: membrane_watershed, seed_threshold: 0.7}   # 2D membrane maps: cell instances by
                                   # seeded watershed, scored as rand_error_watershed (medhub.inference)
      processor: {...}             # processor fields saved with the weights: RadiographImageProcessor for
                                   # classifiers (DICOM windowing, MONOCHROME1), GreyscaleImageProcessor otherwise
      eval_batch_size: 256

The evaluation is `medhub evaluate <stored folder> <data> --split validation --out metrics.json` (run as a
function here), so the card's numbers are the committed float16 weights' numbers.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from . import zoo
from .errors import ConfigError, InputError
from .logging_utils import get_logger

logger = get_logger("zoo")

REPO_ROOT = Path(__file__).resolve().parents[2]
ZOO_KEYS = ("title", "summary", "license", "datasets", "tags", "training_data", "limitations", "intended_use", "input",
            "output", "class_weights", "augment", "random_crop", "weight_map", "inference", "instances",
            "processor", "eval_batch_size", "notes")


@dataclass
class ZooSpec:
    id: str
    recipe_path: Path
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def recipes_dir() -> Path:
    return REPO_ROOT / "recipes" / "zoo"


def recipe_path(name: str) -> Path:
    """`recipes/zoo/<name>.yaml` (aliases resolved), or a path to a recipe file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    name = name.removeprefix("medhub/")
    name = zoo.aliases().get(name, name) if zoo.zoo_dir() else name
    path = recipes_dir() / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in recipes_dir().glob("*.yaml"))
        raise ConfigError(f"zoo build {name!r}: no recipe {path}; known: {', '.join(known)}")
    return path


def load_zoo_recipe(name: str):
    """(Recipe, ZooSpec) of a zoo recipe file: the `zoo:` section is split off, the rest is a plain recipe."""
    from .training.recipe import Recipe

    path = recipe_path(name)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping")
    spec_values = dict(values.pop("zoo", None) or {})
    unknown = sorted(set(spec_values) - set(ZOO_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown zoo key(s) {unknown}; expected some of {list(ZOO_KEYS)}")
    recipe = Recipe.from_dict(values, source=_display_path(path))
    return recipe, ZooSpec(id=recipe.name, recipe_path=path, values=spec_values)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# -- training-set handling ----------------------------------------------------------------------------
def _random_shift(max_shift: int, keys=("image",)):
    """Translate by up to `max_shift` pixels per axis (edge-replicated border)."""

    def shift(sample: dict, rng: np.random.Generator) -> dict:
        out = dict(sample)
        dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
        for key in keys:
            a = np.asarray(out[key])
            padded = np.pad(a, [(0, 0)] * (a.ndim - 2) + [(max_shift, max_shift)] * 2, mode="edge")
            h, w = a.shape[-2:]
            out[key] = padded[..., max_shift + dy:max_shift + dy + h, max_shift + dx:max_shift + dx + w]
        return out

    return shift


def _random_crop(size, keys):
    size = tuple(int(s) for s in size)

    def crop(sample: dict, rng: np.random.Generator) -> dict:
        out = dict(sample)
        shape = np.asarray(out[keys[0]]).shape[-2:]
        if any(s < c for s, c in zip(shape, size)):
            raise InputError(f"random_crop {size}: image of size {shape} is smaller")
        y, x = (int(rng.integers(0, s - c + 1)) for s, c in zip(shape, size))
        for key in keys:
            if key in out:
                out[key] = np.asarray(out[key])[..., y:y + size[0], x:x + size[1]]
        return out

    return crop


def build_augmentation(spec: ZooSpec, image_key: str, label_keys: tuple[str, ...]) -> list:
    """medhub.augment steps from `zoo.augment`: flip, rot90, shift, elastic (U-Net paper's)."""
    from . import augment

    steps = []
    if spec.get("random_crop"):
        steps.append(_random_crop(spec.get("random_crop"), (image_key, *label_keys)))
    for item in spec.get("augment") or []:
        item = dict(item)
        kind = item.pop("name")
        common = dict(image_keys=(image_key,), label_keys=label_keys)
        if kind == "flip":
            steps.append(augment.RandomFlip(2, axes=item.get("axes"), p=item.get("p", 0.5), **common))
        elif kind == "rot90":
            steps.append(augment.RandomRot90(2, p=item.get("p", 0.75), **common))
        elif kind == "shift":
            steps.append(_random_shift(int(item.get("max_shift", 2)), keys=(image_key, *label_keys)))
        elif kind == "elastic":
            steps.append(augment.RandomElastic(2, sigma=item.get("sigma", 10.0), grid_size=item.get("grid_size", 3),
                                               p=item.get("p", 1.0), **common))
        else:
            raise ConfigError(f"{spec.recipe_path}: zoo.augment: unknown step {kind!r} (flip, rot90, shift, elastic)")
    return steps


def _with_weight_maps(dataset, spec: ZooSpec, label_key: str, label_values: dict):
    """Add the U-Net paper's weight map of every (whole) training label map as a `weight_map` column."""
    from .losses.unet_weight_map import instances_from_mask, unet_weight_map

    options = dict(spec.get("weight_map") or {})
    maps = []
    for row in dataset:
        label = np.asarray(row[label_key]).astype(np.int64)
        if label_values:
            mapped = label.copy()
            for source, target in label_values.items():
                mapped[label == int(source)] = int(target)
            label = mapped
        instances = instances_from_mask(label > 0)
        # class_balance: false drops the paper's class-frequency term w_c (w_c = 1): the border term alone.
        classes = None if options.get("class_balance", True) else np.zeros_like(instances)
        maps.append(unet_weight_map(instances, w0=float(options.get("w0", 10.0)),
                                    sigma=float(options.get("sigma", 5.0)), classes=classes))
    return dataset.add_column("weight_map", [m.tolist() for m in maps])


def prepare_train_dataset(dataset, spec: ZooSpec, recipe, segmentation: bool):
    from .augment import Compose, as_batch_transform

    image_key = "image" if "image" in dataset.column_names else "pixel_values"
    label_keys: tuple[str, ...] = ()
    if segmentation:
        label_key = next(k for k in ("mask", "label", "labels") if k in dataset.column_names)
        label_keys = (label_key,)
        if spec.get("weight_map"):
            dataset = _with_weight_maps(dataset, spec, label_key,
                                        (recipe.data.get("collator") or {}).get("label_values") or {})
            label_keys = (label_key, "weight_map")
    steps = build_augmentation(spec, image_key, label_keys)
    if steps:
        dataset = dataset.with_transform(as_batch_transform(Compose(steps, seed=recipe.seed)))
    return dataset


def class_weighted_loss(labels: np.ndarray, num_labels: int):
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    weights = counts.sum() / (num_labels * np.maximum(counts, 1))
    weight = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weight.to(logits.device))

    return loss, weights.tolist()


# -- build ----------------------------------------------------------------------------------------------
def zoo_processor(fields: dict, segmentation: bool, in_channels: int):
    """The processor stored with a zoo checkpoint. Classifiers get the radiograph processor, so that a user's
    DICOM is windowed and MONOCHROME1 inverted exactly as for any X-ray (on 8-bit greyscale arrays it computes
    the same x / 255 as the training collator); segmentation models the plain greyscale one."""
    from .processing import GreyscaleImageProcessor, RadiographImageProcessor

    if segmentation:
        return GreyscaleImageProcessor(**fields)
    return RadiographImageProcessor(num_channels=in_channels, **fields)


def build(name: str, data_dir: str | None = None, out_dir: str | None = None, work_dir: str | None = None,
          max_steps: int | None = None) -> dict[str, Any]:
    """Train, store float16, evaluate the stored weights, write weights_info and the card. Returns the metrics."""
    from . import MedModel
    from .commands.evaluate import evaluate_command
    from .training import evaluate as E
    from .training.trainer import build_trainer, final_evaluation, record_weights_info

    if data_dir:
        os.environ["MEDHUB_DATA_DIR"] = str(Path(data_dir).resolve())
    recipe, spec = load_zoo_recipe(name)
    zoo_root = zoo.zoo_dir() or REPO_ROOT / "model_zoo"
    out = Path(out_dir) if out_dir else zoo_root / spec.id
    work = Path(work_dir) if work_dir else REPO_ROOT / "out" / "zoo" / spec.id
    repo_id = f"medhub/{spec.id}"

    shutil.rmtree(work, ignore_errors=True)  # this build's scratch checkpoints only
    trainer, timer = build_trainer(recipe, work, max_steps)
    model = trainer.model
    segmentation = E.task_of(model) == E.SEGMENTATION
    class_weights = None
    if spec.get("class_weights") == "balanced" and not segmentation:
        labels = np.asarray(trainer.train_dataset["label"], dtype=np.int64)
        trainer.compute_loss_func, class_weights = class_weighted_loss(labels, model.config.num_labels)
    if hasattr(trainer.train_dataset, "column_names"):
        trainer.train_dataset = prepare_train_dataset(trainer.train_dataset, spec, recipe, segmentation)
    elif any(spec.get(k) for k in ("augment", "random_crop", "weight_map")):
        # 3D recipes sample patches on the fly (`data.patches`: fg_fraction, flip_axes): no dataset rows to map.
        raise ConfigError(f"{spec.recipe_path}: zoo augment/random_crop/weight_map apply to dataset rows; this "
                          "recipe samples 3D patches, so set sampling and mirroring in data.patches instead")
    start, load_before = time.perf_counter(), _load_average()
    train_output = trainer.train()
    wall = time.perf_counter() - start
    load = max(load_before, _load_average())
    train_metrics = dict(train_output.metrics, global_step=train_output.global_step)
    _, threshold = final_evaluation(trainer, recipe) if not segmentation else ({}, None)
    command = f"medhub zoo build {spec.id}"
    record_weights_info(model, recipe, trainer.args, [], train_metrics, timer, command, out, threshold)

    # Store float16 with the processor and card facts, then evaluate what was stored.
    info = dict(model.config.weights_info)
    info.update({k: spec.get(k) for k in ("title", "summary", "license", "datasets", "tags", "limitations",
                                          "intended_use", "input", "output") if spec.get(k) is not None})
    info["repo_id"] = repo_id
    info["recipe"] = recipe.source
    info["training_time"] = (f"{wall / 60:.1f} min ({wall:.0f} s) on {torch.get_num_threads()} thread(s) of a "
                             f"{os.cpu_count()}-core CPU"
                             + (f", shared with other jobs (1-minute load average up to {load:.1f})" if load > 2.5
                                else ""))
    info["training_seconds"] = round(wall, 1)
    hyper = dict(info.get("hyperparameters") or {})
    hyper.update({k: v for k, v in (recipe.model.get("config") or {}).items() if k in (
        "depth", "base_width", "padding", "norm", "batch_norm", "classifier_type", "loss", "dropout", "upsampling")})
    if (recipe.data.get("collator") or {}).get("resize"):
        hyper["input_size"] = list(recipe.data["collator"]["resize"])
    if class_weights:
        hyper["class_weights"] = [round(w, 4) for w in class_weights]
    if spec.get("augment"):
        hyper["augmentation"] = [dict(a) for a in spec.get("augment")]
    if spec.get("random_crop"):
        hyper["random_crop"] = list(spec.get("random_crop"))
    if spec.get("weight_map"):
        hyper["weight_map"] = dict(spec.get("weight_map"))
    info["hyperparameters"] = hyper
    if spec.get("inference"):
        info["inference"] = dict(spec.get("inference"))
    if spec.get("instances"):
        info["instances"] = dict(spec.get("instances"))
    info["training_data"] = spec.get("training_data") or info.get("training_data")
    info["dataset_name"] = str(recipe.data.get("name"))
    info["evaluation_command"] = (f"medhub evaluate {repo_id} {recipe.data.get('name')} --split {recipe.eval_split} "
                                  f"--batch-size {spec.get('eval_batch_size', 8)} --out metrics.json")
    info["training_procedure"] = (f"Recipe `{recipe.source}` of the medhub repository (a training recipe plus its "
                                  "`zoo:` section), built with "
                                  f"`{command}`: transformers Trainer, seed {recipe.seed}, "
                                  f"{'loss weighted per class ' + str([round(w, 3) for w in class_weights]) + ', ' if class_weights else ''}"
                                  + (f"best checkpoint by validation {recipe.evaluation.get('metric')} "
                                     f"(evaluated every {recipe.training.get('eval_strategy')}). "
                                     if recipe.training.get("load_best_model_at_end") else
                                     "the final weights (no checkpoint selection). ")
                                  + (f"Decision threshold {threshold:.4f} chosen on validation "
                                     f"({recipe.evaluation.get('threshold_criterion', 'f1')}). " if threshold is not None else "")
                                  + (f"{spec.get('notes')} " if spec.get("notes") else "")
                                  + "Weights stored in float16; the metrics are those of the stored weights "
                                  "(loaded back as float32 on the CPU).")
    model.config.weights_info = info
    if spec.get("processor"):
        model.image_processor = zoo_processor(spec.get("processor"), segmentation, model.config.in_channels)
    _store(model, out)

    result = evaluate_command(str(out), str(recipe.data.get("name")), split=recipe.eval_split,
                              batch_size=int(spec.get("eval_batch_size", 8)))
    metrics_json = result.to_json()
    stored = MedModel.from_pretrained(str(out))
    info = dict(stored.config.weights_info)
    info["metrics"] = metrics_json["metrics"]
    stored.config.weights_info = info
    stored.image_processor = model.image_processor
    _store(stored, out)
    (work / "metrics.json").parent.mkdir(parents=True, exist_ok=True)
    (work / "metrics.json").write_text(json.dumps(metrics_json, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.glob("*.safetensors")) / 1e6
    logger.info("stored %s (%.1f MB) in %s", repo_id, size, out)
    return {"id": spec.id, "folder": str(out), "size_mb": round(size, 2), "training_seconds": round(wall, 1),
            "metrics": {r["name"]: r["value"] for r in metrics_json["metrics"]}}


def _load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return 0.0


def _store(model, out: Path) -> None:
    """float16 weights (loaded back as float32 by medhub), config, processor and card."""
    out.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.float16)
    model.save_pretrained(out)
    model.to(torch.float32)


# -- push -----------------------------------------------------------------------------------------------
def push(org: str, token: str | None = None, names: list[str] | None = None) -> list[str]:
    """Publish every present zoo folder (or `names`) as `<org>/<id>` with push_to_hub; returns the repo ids."""
    from . import MedModel

    pushed = []
    for name in names or zoo.available():
        folder, why = zoo.find(name)
        if folder is None:
            raise ConfigError(f"zoo push {name!r}: {why}")
        model = MedModel.from_pretrained(str(folder))
        card = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
        if card is not None:
            card = card.replace(f"medhub/{name}", f"{org}/{name}")
        repo = f"{org}/{name}"
        model = model.to(torch.float16)  # as stored in the zoo
        model.push_to_hub(repo, token=token, card=card, commit_message=f"medhub zoo push {name}")
        pushed.append(repo)
    return pushed


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
