"""`evaluate_model(model, data, split)`: the metrics of a model on a labelled split, measured through the path
users run - the processor saved with the weights, then `model.infer` (the model's own inferer), then the same
label maps and cell instances `medhub predict` writes (`medhub.predict.inference`) - so a number on a card is
what `medhub predict` gives on the same data.

- classification: images in batches (the processor resizes them to one size), probabilities, metrics at the
  threshold saved with the weights (or a given one, or one chosen on the validation split, then applied);
- 2D segmentation: whole images, one at a time, at their own size; for weights whose instances are nuclei
  (`weights_info["instances"]` method `nuclei_watershed`) also the instance measures against the data's
  instance labels (column `label`): the DSB score, AP / F1 / precision / recall at IoU 0.5, overall (mean over
  images) and per image type (column `image_type`, as dsb2018-nuclei has);
- 3D segmentation: whole subjects (channels by the processor's `channel_names`, the ROI mask from the column
  the processor names), labels on the subject's grid, BraTS region Dice per subject and their mean.

`data` is a recipe's `data:` section (name or path, options, label_values, patches with the subjects' split);
`medhub evaluate` builds it from what training recorded in `weights_info`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import metrics as M
from ..data.recipe_data import load_rows, map_label_values, subject_rows, subject_volumes
from ..errors import ConfigError, InputError
from ..inference import instance_postprocessing
from ..logging_utils import get_logger
from ..predict.inference import input_processor, predict_subject, segment_image
from ..weights_info import read_weights_info
from .task_metrics import (
    BRATS_REGIONS,
    CLASSIFICATION,
    SEGMENTATION,
    card_metrics,
    class_scores,
    instance_metrics,
    isbi_metrics,
    label_names,
    nuclei_metrics,
    region_dice,
    task_metrics,
    task_of,
)

logger = get_logger("evaluation")
IMAGE_KEYS = ("image", "pixel_values")
TARGET_KEYS = ("mask", "label", "labels")


@dataclass
class EvaluationResult:
    metrics: dict[str, float]
    split: str
    dataset: str
    threshold: Any = None
    threshold_source: str | None = None
    num_examples: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def card_metrics(self) -> list[dict[str, Any]]:
        return card_metrics(self.metrics, self.split, self.dataset)

    def to_json(self) -> dict[str, Any]:
        return {"split": self.split, "dataset": self.dataset, "num_examples": self.num_examples,
                "threshold": _plain(self.threshold), "threshold_source": self.threshold_source,
                "metrics": self.card_metrics()}


def evaluate_model(model, data: dict[str, Any], split: str = "validation", *, threshold: Any = None,
                   limit: int | None = None, batch_size: int = 8, progress: bool = False) -> EvaluationResult:
    """Metrics of `model` on the `split` of `data` (see the module docstring).

    threshold (classification): a number, "validation" (chosen there, max F1), or None (the one saved with the
    weights, else 0.5)."""
    data = dict(data)
    if limit is not None:
        data.update(limit_eval=int(limit), shuffle_before_limit=False)
    name = str(data.get("name") or data.get("path"))
    model = model.eval()
    if model.spatial_dims == 3:
        return _evaluate_volumes(model, data, split, name, progress)
    if task_of(model) == SEGMENTATION:
        return _evaluate_images(model, data, split, name, progress)
    threshold, source = _threshold(model, data, split, threshold, batch_size)
    probs, labels = classify_rows(model, load_rows(data, split), batch_size, progress)
    metrics = task_metrics(CLASSIFICATION, model.config, probs, labels, threshold)
    if np.ndim(threshold) == 0:
        metrics["threshold"] = float(threshold)
    return EvaluationResult(metrics=metrics, split=split, dataset=name, threshold=threshold,
                            threshold_source=source, num_examples=len(labels))


def classify_rows(model, rows, batch_size: int = 8, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (N, K), labels) of a classifier over dataset rows, through its processor and inferer."""
    image_key, target_key = _columns(rows)
    processor = input_processor(model)
    probs, labels = [], []
    for start in tqdm(range(0, len(rows), batch_size), desc="medhub evaluate", disable=not progress):
        batch = rows[start:start + batch_size]
        pixel_values = processor(list(batch[image_key]), return_tensors="pt")["pixel_values"]
        probs.append(model.infer(pixel_values).numpy())
        labels.extend(batch[target_key])
    return np.concatenate(probs), _model_label_ids(model, rows.features.get(target_key), np.asarray(labels))


def _model_label_ids(model, feature, labels: np.ndarray) -> np.ndarray:
    """Labels as the model's class indices: a dataset whose classes have names (class folders) is matched to the
    model's labels by name (case-insensitive), never by position; names the model lacks are an error."""
    names = getattr(feature, "names", None)
    generic = all(re.fullmatch(r"(LABEL_)?\d+", label) for label in model.config.labels)
    if not names or generic:  # a model without label names: by position, as it was trained
        return labels
    model_ids = {label.lower(): i for i, label in enumerate(model.config.labels)}
    unknown = [n for n in names if n.lower() not in model_ids]
    if unknown:
        raise InputError(f"evaluation data classes {names}: {unknown} are not labels of this model "
                         f"({model.config.labels}); name the class folders after the model's labels")
    return np.asarray([model_ids[names[int(i)].lower()] for i in labels])


def choose_threshold_on(model, data: dict[str, Any], batch_size: int = 8, criterion: str = "f1"):
    """The classification threshold(s) maximising `criterion` on the *validation* split."""
    probs, labels = classify_rows(model, load_rows(data, "validation"), batch_size)
    y, s = class_scores(probs, labels, getattr(model.config, "problem_type", None))
    return M.choose_threshold(y, s, criterion=criterion)


def _threshold(model, data, split, threshold, batch_size) -> tuple[Any, str | None]:
    info = read_weights_info(model.config)
    if threshold is None:
        if "threshold" in info:
            return info["threshold"], "validation (saved with the weights)"
        return 0.5, None
    if threshold == "validation":
        return choose_threshold_on(model, data, batch_size), "validation"
    return threshold, None


def _columns(rows) -> tuple[str, str]:
    image = next((k for k in IMAGE_KEYS if k in rows.column_names), None)
    target = next((k for k in TARGET_KEYS if k in rows.column_names), None)
    if image is None or target is None:
        raise InputError(f"evaluation data has columns {rows.column_names}; it needs an image column "
                         f"({list(IMAGE_KEYS)}) and a label column ({list(TARGET_KEYS)})")
    return image, target


def _evaluate_images(model, data, split, name, progress) -> EvaluationResult:
    rows = load_rows(data, split)
    image_key, target_key = _columns(rows)
    label_values = {int(k): int(v) for k, v in (data.get("label_values") or {}).items()} or None
    nuclei = (instance_postprocessing(model) or ("",))[0] == "nuclei_watershed"
    if nuclei and "label" not in rows.column_names:
        raise InputError(f"{name} {split}: columns {rows.column_names}; scoring nuclei needs the instance labels "
                         "in a `label` column (0 = background, 1..n one nucleus each), as dsb2018-nuclei has")
    if nuclei and model.config.num_labels not in (2, 3):
        raise ConfigError(f"weights_info.instances: nuclei_watershed reads 2 labels (background, nucleus) or 3 "
                          f"(background, interior, boundary); this model has {model.config.num_labels}")
    # Dice per class needs class maps (dsb2018-nuclei's `mask` option); instance labels alone give instance measures
    class_maps = not (nuclei and target_key == "label")
    image_types = rows.features.get("image_type")
    preds, targets, cells, nucleus_scores, groups = [], [], [], [], []
    for row in tqdm(rows, desc="medhub evaluate", disable=not progress):
        result = segment_image(model, row[image_key])
        target = map_label_values(np.asarray(row[target_key]), label_values)
        if target.shape != result.labels.shape:
            raise InputError(f"{name} {split}: label map of shape {target.shape} for an image of "
                             f"{result.labels.shape}")
        if class_maps:
            preds.append(result.labels.astype(np.int64))
            targets.append(target)
        if nuclei:
            nucleus_scores.append(M.instance_scores(result.instances, np.asarray(row["label"])))
            groups.append(image_types.int2str(row["image_type"]) if image_types is not None else "all")
        elif result.instances is not None:
            cells.append(result.instances)
    metrics = task_metrics(SEGMENTATION, model.config, preds, targets) if class_maps else {}
    extra = {}
    if nuclei:
        metrics.update(nuclei_metrics(nucleus_scores, groups))
        extra["images_per_type"] = {g: groups.count(g) for g in sorted(set(groups))}
    elif model.config.num_labels == 2:  # membrane / cell maps: the ISBI 2012 challenge's metrics
        metrics.update(isbi_metrics(preds, targets))
    if cells:
        metrics.update(instance_metrics(cells, targets))
    return EvaluationResult(metrics=metrics, split=split, dataset=name, num_examples=len(rows), extra=extra)


def _evaluate_volumes(model, data, split, name, progress) -> EvaluationResult:
    """Whole subjects: per-subject Dice (regions and labels), averaged over the subjects (BraTS convention)."""
    processor = input_processor(model)
    channels = list(getattr(processor, "channel_names", None) or [])
    options = dict(data.get("patches") or {})
    rows = subject_rows(data, split)
    mask_column = getattr(processor, "mask_name", None) or options.get("mask")
    label_column = options.get("label", "label")
    names = label_names(model.config)
    per_subject: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for row in tqdm(rows, desc="medhub evaluate", disable=not progress):
        subject = str(row.get("subject_id") or row.get("id") or len(per_subject))
        volumes = subject_volumes(row, subject, channels + [label_column])
        mask = subject_volumes(row, subject, [mask_column])[mask_column] if mask_column in row else None
        result = predict_subject(model, {c: volumes[c] for c in channels}, mask, where=f"subject {subject}")
        label = np.rint(volumes[label_column].array).astype(np.int64)
        if label.shape != result.labels.shape:
            raise InputError(f"subject {subject}: label map {label.shape} differs from the prediction's grid "
                             f"{result.labels.shape}")
        per_subject[subject] = region_dice(result.labels.astype(np.int64), label, model.config.num_labels, names)
        logger.info("%s: %s", subject, ", ".join(f"{k}={v:.4f}" for k, v in per_subject[subject].items()))
    if not per_subject:
        raise ConfigError(f"{name} {split}: no subject to evaluate")
    metrics = {key: float(np.mean([m[key] for m in per_subject.values()])) for key in next(iter(per_subject.values()))}
    for subject, values in per_subject.items():
        metrics.update({f"{k}/{subject}": v for k, v in values.items() if k.removeprefix("dice_") in BRATS_REGIONS})
    return EvaluationResult(metrics=metrics, split=split, dataset=name, num_examples=len(per_subject),
                            extra={"subjects": list(per_subject), "per_subject": per_subject,
                                   "seconds": round(time.perf_counter() - started, 1)})


def format_table(result: EvaluationResult) -> str:
    rows = result.card_metrics()
    width = max([len("metric")] + [len(r["name"]) for r in rows])
    lines = [f"{result.dataset} / {result.split} ({result.num_examples} examples)",
             f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{r['name']:<{width}}  {r['value']:.4f}" for r in rows]
    if result.extra.get("images_per_type"):
        lines += ["", instance_table(result)]
    if result.threshold_source:
        lines.append(f"threshold chosen on: {result.threshold_source}")
    return "\n".join(lines)


def instance_table(result: EvaluationResult) -> str:
    """Nuclei: one line per image type and one overall, the instance measures in columns."""
    counts = result.extra["images_per_type"]
    columns = ("dsb_score", "ap_50", "f1_50", "precision_50", "recall_50")
    lines = [f"{'image type':<14}{'images':>7}" + "".join(f"{c:>14}" for c in columns)]
    for group, suffix, n in [*((g, f"/{g}", counts[g]) for g in counts), ("overall", "", sum(counts.values()))]:
        lines.append(f"{group:<14}{n:>7}" + "".join(f"{result.metrics[c + suffix]:>14.4f}" for c in columns))
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["EvaluationResult", "choose_threshold_on", "classify_rows", "evaluate_model", "format_table",
           "instance_table"]
