"""Fine-tuning medhub models with `transformers.Trainer`.

The Trainer brings schedulers, mixed precision, checkpoints (safetensors), resume, progress bars and, through
accelerate, multi-GPU / multi-node DDP and FSDP: launch the same recipe with `accelerate launch` or `torchrun`.
medhub adds the model's processor applied to the training data (`medhub.training.data`: the processor saved with
the weights), the collator of the task, the model's own loss (the Trainer reads `outputs.loss`; a class-balanced
cross-entropy with `training.class_weights: balanced`), the task's metrics, early stopping on a validation
metric and, at the end, an evaluation of the eval split through the path users run (`medhub.evaluation`) and
the model saved with a *medhub* model card whose `weights_info` records those metrics, the inference settings,
the hyper-parameters, the card facts, the command and the time.

    from medhub.training import load_recipe, train
    result = train(load_recipe("recipes/unet-isbi2012-quick.yaml"), output_dir="out/unet")
    result.metrics      # {"mean_dice": ..., "dice_background": ..., ...} on the validation split
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, enable_full_determinism, set_seed

from ..data.recipe_data import for_evaluation, load_rows
from ..errors import ConfigError
from ..evaluation import choose_threshold_on, evaluate_model
from ..evaluation.task_metrics import (
    CLASSIFICATION,
    SEGMENTATION,
    card_metrics,
    compute_metrics_fn,
    preprocess_logits_fn,
    task_of,
)
from ..logging_utils import get_logger
from ..precision import native_bf16, resolve_precision
from .callbacks import TrainingTimeCallback, early_stopping
from .collators import ClassificationCollator, SegmentationCollator
from .data import SPLIT_ALIASES, load_split
from .recipe import Recipe, build_model

logger = get_logger("training")


@dataclass
class TrainResult:
    model: Any
    trainer: Trainer
    output_dir: Path
    metrics: dict[str, float]          # final evaluation on the validation split (no `eval_` prefix)
    card_metrics: list[dict[str, Any]]  # the same, as written into weights_info["metrics"]
    train_metrics: dict[str, float]
    threshold: Any = None


STAGING_DIR = ".medhub-tmp-checkpoint"  # where a checkpoint is written before it is renamed into place


class MedTrainer(Trainer):
    """`transformers.Trainer` whose checkpoints appear atomically (crash-safe work).

    transformers writes `checkpoint-N/` file by file: a run killed while saving leaves a half-written folder
    that `--resume` would pick. Here each checkpoint is written under `<output_dir>/.medhub-tmp-checkpoint/`
    and renamed to `checkpoint-N` only when complete (a rename within one filesystem is atomic), so
    `checkpoint-N` either exists whole or not at all; a leftover staging folder is removed on the next save.
    """

    def _save_checkpoint(self, model, trial) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        run_dir = self._get_output_dir(trial=trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = os.path.join(run_dir, STAGING_DIR)
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._get_output_dir = lambda trial=None: staging  # transformers saves into <staging>/checkpoint-N
        try:
            super()._save_checkpoint(model, trial)
        finally:
            del self._get_output_dir
        final = os.path.join(run_dir, name)
        if self.state.best_model_checkpoint and self.state.best_model_checkpoint.startswith(staging):
            self.state.best_model_checkpoint = os.path.join(run_dir, os.path.basename(self.state.best_model_checkpoint))
        if self.args.should_save:
            written = os.path.join(staging, name)
            self.state.save_to_json(os.path.join(written, "trainer_state.json"))  # with the final paths
            _fsync_tree(written)
            if os.path.isdir(final):  # a checkpoint of the same step from an earlier, interrupted run
                shutil.rmtree(final)
            os.replace(written, final)
            shutil.rmtree(staging, ignore_errors=True)
            rotate_checkpoints(output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()


def _fsync_tree(folder: str) -> None:
    """Flush the files of `folder` to disk so that the rename publishes complete data after a power loss too."""
    for root, _, files in os.walk(folder):
        for file in files:
            with open(os.path.join(root, file), "rb") as fh:
                os.fsync(fh.fileno())


def save_model_atomically(model, output_dir: Path) -> None:
    """`model.save_pretrained(output_dir)` with each file written under a temporary name, then renamed."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / ".medhub-tmp-final"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    _fsync_tree(str(staging))
    for file in sorted(staging.iterdir(), key=lambda p: p.name == "config.json"):  # config.json last
        os.replace(file, output_dir / file.name)
    shutil.rmtree(staging, ignore_errors=True)


def make_collator(model, recipe: Recipe):
    """The collator of the model's task (rows are already processed, see `medhub.training.data`)."""
    config = model.config
    if task_of(model) == SEGMENTATION:
        return SegmentationCollator(spatial_dims=model.spatial_dims, in_channels=config.in_channels)
    multi = recipe.data.get("multi_label", getattr(config, "problem_type", None) == "multi_label_classification")
    return ClassificationCollator(num_labels=config.num_labels, multi_label=bool(multi), in_channels=config.in_channels)


def class_weighted_loss(labels: np.ndarray, num_labels: int):
    """`training.class_weights: balanced`: cross-entropy weighted by N / (K * count_k) of the training labels."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    weights = counts.sum() / (num_labels * np.maximum(counts, 1))
    weight = torch.tensor(weights, dtype=torch.float32)

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=weight.to(logits.device))

    return loss, weights.tolist()


def _precision(value: Any, name: str, source: str, use_cpu: bool = False) -> bool:
    """bf16/fp16 from the recipe: true, false or "auto" (on where this device computes it natively: bf16 on a GPU
    with bf16 or a CPU with AVX512-BF16/AMX, fp16 on CUDA; see `medhub.precision`)."""
    cuda = torch.cuda.is_available() and not use_cpu
    if value == "auto":
        return native_bf16("cuda" if cuda else "cpu") if name == "bf16" else cuda
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: training.{name}={value!r}: expected true, false or auto")
    if value and name == "fp16" and not cuda:
        raise ConfigError(f"{source}: training.fp16 needs a CUDA device (none here); use bf16, which CPUs support")
    if value and name == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"{source}: training.bf16: this GPU has no bfloat16 support; use fp16")
    if value and name == "bf16" and not cuda:
        resolve_precision("bf16", "cpu")  # warns where the CPU emulates bf16 (several times slower)
    return value


def training_arguments(recipe: Recipe, output_dir: str | Path, max_steps: int | None = None) -> TrainingArguments:
    """TrainingArguments from the recipe's `training:` section and medhub's defaults."""
    values: dict[str, Any] = {k: v for k, v in recipe.training.items() if k != "class_weights"}
    values.setdefault("logging_steps", 10)
    values.setdefault("report_to", "none")
    values.setdefault("save_strategy", "steps")
    values.setdefault("dataloader_pin_memory", torch.cuda.is_available())
    for name in ("bf16", "fp16"):
        values[name] = _precision(values.get(name, False), name, recipe.source, bool(values.get("use_cpu")))
    if values["bf16"] and not torch.cuda.is_available():
        values.setdefault("use_cpu", True)  # transformers takes bf16 on a CPU only when told to train there
    if max_steps is not None:
        values["max_steps"] = int(max_steps)
    metric = recipe.evaluation.get("metric")
    if metric:
        values.setdefault("metric_for_best_model", metric)
        values.setdefault("greater_is_better", bool(recipe.evaluation.get("greater_is_better", "loss" not in metric)))
    if recipe.evaluation.get("batch_size"):
        values.setdefault("per_device_eval_batch_size", int(recipe.evaluation["batch_size"]))
    try:
        return TrainingArguments(output_dir=str(output_dir), seed=recipe.seed, remove_unused_columns=False,
                                 label_names=["labels"], **values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{recipe.source}: training: {' '.join(str(err).split())}") from None


def build_trainer(recipe: Recipe, output_dir: str | Path, max_steps: int | None = None,
                  model=None) -> tuple[Trainer, TrainingTimeCallback]:
    """A ready Trainer (model seeded by the recipe, datasets, collator, metrics, callbacks)."""
    args = training_arguments(recipe, output_dir, max_steps)
    if recipe.training.get("full_determinism"):
        enable_full_determinism(recipe.seed)
    else:
        set_seed(recipe.seed)
    model = model if model is not None else build_model(recipe)
    model.config.weights_info = {**(model.config.weights_info or {}), **inference_info(recipe)}
    train_data = load_split(recipe.data, recipe.train_split, model=model, seed=recipe.seed, train=True)
    needs_eval = args.eval_strategy != "no" or args.load_best_model_at_end
    eval_data = load_split(recipe.data, recipe.eval_split, model=model, seed=recipe.seed) if needs_eval else None
    timer = TrainingTimeCallback()
    trainer = MedTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=eval_data,
        data_collator=make_collator(model, recipe),
        compute_metrics=compute_metrics_fn(model),
        preprocess_logits_for_metrics=preprocess_logits_fn(model),
        callbacks=[timer, *early_stopping(recipe.evaluation, recipe.training, recipe.source)],
    )
    if recipe.training.get("class_weights") == "balanced":
        if task_of(model) != CLASSIFICATION:
            raise ConfigError(f"{recipe.source}: training.class_weights applies to classification; segmentation "
                              "weights pixels with data.weight_map or the model's loss")
        labels = np.asarray(load_rows(recipe.data, recipe.train_split, recipe.seed, train=True)["label"], np.int64)
        trainer.compute_loss_func, weights = class_weighted_loss(labels, model.config.num_labels)
        trainer.class_weights = [round(w, 4) for w in weights]
    return trainer, timer


def inference_info(recipe: Recipe) -> dict[str, Any]:
    """What the weights must carry for prediction to run as evaluation did: the recipe's inference settings,
    cell-instance post-processing and label value mapping."""
    info: dict[str, Any] = {}
    if recipe.inference_settings:
        info["inference"] = dict(recipe.inference_settings)
    if recipe.inference.get("instances"):
        info["instances"] = dict(recipe.inference["instances"])
    if recipe.data.get("label_values"):
        info["label_values"] = {str(k): int(v) for k, v in recipe.data["label_values"].items()}
    return info


def final_evaluation(trainer: Trainer, recipe: Recipe):
    """The eval split's metrics through the path users run (`medhub.evaluation.evaluate_model`); a
    `threshold: validation` recipe chooses the classification threshold on the validation split first."""
    model = trainer.model
    threshold = recipe.evaluation.get("threshold", 0.5)
    if task_of(model) == CLASSIFICATION and not (threshold == "validation" or isinstance(threshold, (int, float))):
        raise ConfigError(f"{recipe.source}: evaluation.threshold={threshold!r}: expected a number or 'validation'")
    if threshold == "validation":
        threshold = choose_threshold_on(model, recipe.data, _eval_batch(recipe, trainer),
                                        criterion=recipe.evaluation.get("threshold_criterion", "f1"))
    result = evaluate_model(model, for_evaluation(recipe.data), recipe.eval_split,
                            threshold=threshold if task_of(model) == CLASSIFICATION else None,
                            batch_size=_eval_batch(recipe, trainer))
    return result, (threshold if task_of(model) == CLASSIFICATION else None)


def _eval_batch(recipe: Recipe, trainer: Trainer) -> int:
    return int(recipe.evaluation.get("batch_size") or trainer.args.per_device_eval_batch_size)


ARCHITECTURE_FIELDS = ("depth", "base_width", "padding", "norm", "batch_norm", "classifier_type", "loss", "dropout",
                       "upsampling", "deep_supervision", "normal_feature_maps", "fc_feature_maps")


def record_weights_info(model, recipe: Recipe, args: TrainingArguments, card_rows: list[dict], train_metrics: dict,
                        timer: TrainingTimeCallback, command: str, output_dir: Path, threshold=None,
                        class_weights: list[float] | None = None) -> None:
    """Fill `config.weights_info` so that the generated card reports what this training measured, and the
    weights carry what prediction needs (inference settings, instances, label values, the data's split)."""
    dataset = str(recipe.data.get("name") or recipe.data.get("path"))
    world = max(args.world_size, 1)
    info = dict(model.config.weights_info or {})
    info.pop("metrics", None)
    hyper = {
        "recipe": recipe.name,
        "seed": recipe.seed,
        "steps": int(train_metrics.get("global_step", 0)),
        "epochs": round(float(train_metrics.get("epoch", 0.0)), 3),
        "learning_rate": args.learning_rate,
        "lr_scheduler": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": args.warmup_steps,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "weight_decay": args.weight_decay,
        "batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
        "processes": world,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
    }
    hyper.update({k: v for k, v in (recipe.model.get("config") or {}).items() if k in ARCHITECTURE_FIELDS})
    if class_weights:
        hyper["class_weights"] = class_weights
    if recipe.data.get("augment"):
        hyper["augmentation"] = [dict(a) for a in recipe.data["augment"]]
    if recipe.data.get("weight_map"):
        hyper["weight_map"] = dict(recipe.data["weight_map"])
    info.update(
        trained=True,
        title=info.get("title") or f"{recipe.name}",
        dataset_name=dataset,
        training_data=f"{dataset}, split `{recipe.train_split}`"
                      + (f" (first {recipe.data['limit_train']} examples)" if recipe.data.get("limit_train") else ""),
        metrics=card_rows,
        hyperparameters=hyper,
        command=command,
        training_time=timer.formatted(),
        evaluation_command=f"medhub evaluate {output_dir} {dataset} --split {recipe.eval_split}",
    )
    info.update({k: v for k, v in recipe.card.items() if v is not None and k != "notes"})
    if recipe.source != "<dict>":
        info["recipe"] = recipe.source
    if threshold is not None:
        info["threshold"] = _plain(threshold)
    info.update(inference_info(recipe))
    if recipe.data.get("options"):
        info["data_options"] = dict(recipe.data["options"])
    if recipe.data.get("patches"):  # 3D patch training: channels, ROI, subject split and patch sizes
        info["patches"] = dict(recipe.data["patches"])
    model.config.weights_info = info


def _plain(value):
    return value.tolist() if isinstance(value, np.ndarray) else value.item() if isinstance(value, np.generic) else value


def train(recipe: Recipe, output_dir: str | Path | None = None, *, max_steps: int | None = None,
          resume_from_checkpoint: str | bool | None = None, push_to_hub: str | None = None,
          command: str | None = None) -> TrainResult:
    """Train, evaluate the eval split through the path users run, save the model with a medhub card to
    `output_dir` (and push it)."""
    output_dir = Path(output_dir or Path("out") / recipe.name)
    trainer, timer = build_trainer(recipe, output_dir, max_steps)
    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    train_metrics = dict(train_output.metrics, global_step=train_output.global_step)
    result, threshold = final_evaluation(trainer, recipe)
    split = SPLIT_ALIASES.get(recipe.eval_split, recipe.eval_split)
    rows = card_metrics(result.metrics, split, str(recipe.data.get("name") or recipe.data.get("path")))
    model = trainer.model
    command = command or " ".join(["medhub", "train", recipe.source] if recipe.source != "<dict>" else sys.argv)
    record_weights_info(model, recipe, trainer.args, rows, train_metrics, timer, command, output_dir, threshold,
                        getattr(trainer, "class_weights", None))
    if trainer.is_world_process_zero():
        save_model_atomically(model, output_dir)
        logger.info("saved %s with its model card to %s", type(model).__name__, output_dir)
        if push_to_hub:
            model.push_to_hub(push_to_hub, commit_message=f"medhub train {recipe.name}")
    trainer.accelerator.wait_for_everyone()
    return TrainResult(model=model, trainer=trainer, output_dir=output_dir, metrics=result.metrics,
                       card_metrics=rows, train_metrics=train_metrics, threshold=threshold)
