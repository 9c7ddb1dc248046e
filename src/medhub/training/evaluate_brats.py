"""Whole-volume evaluation of 3D segmenters on BraTS-style subjects: region and per-label Dice.

Each subject of the split is cropped to its ROI mask's bounding box (as in training, see patches3d), predicted
densely (DeepMedic: `model.segment_volume`, the original's tiling; 'same'-padded U-Nets:
`sliding_window_inference` over `inference_size` windows, Gaussian-blended), argmax-ed, set to background
outside the ROI mask, pasted back into the full grid and compared with the full label map.

BraTS regions (Menze et al., IEEE TMI 2015): whole tumour = labels {1, 2, 3, 4}, tumour core = {1, 3, 4},
enhancing tumour = {4}. Metrics are per-subject Dice averaged over the subjects (the challenge's convention):
`dice_whole_tumor`, `dice_tumor_core`, `dice_enhancing_tumor`, `dice_<label>` for every foreground label,
and the same per subject as `<metric>/<subject_id>`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .. import metrics as M
from ..logging_utils import get_logger
from .evaluate import EvaluationResult, label_names
from .patches3d import load_subjects, patch_options, split_subjects

logger = get_logger("training")

BRATS_REGIONS = {"whole_tumor": (1, 2, 3, 4), "tumor_core": (1, 3, 4), "enhancing_tumor": (4,)}


def uses_volumes(data: dict[str, Any], info: dict[str, Any] | None) -> bool:
    """Whether `medhub evaluate` should evaluate whole volumes (a 3D patch recipe or weights trained by one)."""
    return bool(data.get("patches") or (info or {}).get("patches"))


def predict_volume(model, image: np.ndarray, mask: np.ndarray, inference_size, batch_size: int = 4,
                   overlap: float = 0.5) -> np.ndarray:
    """Class map (D, H, W) of one (C, D, H, W) volume, background outside `mask`."""
    volume = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    model.eval()
    if hasattr(model, "segment_volume"):  # DeepMedic: the original's dense tiling with every pathway
        probs = model.segment_volume(volume, batch_size=batch_size, progress=False,
                                     roi_mask=torch.from_numpy(mask.astype(np.float32)))
    else:
        from ..inference import sliding_window_inference

        dtype = next(model.parameters()).dtype

        def logits(x):
            return model(pixel_values=x.to(dtype)).logits.float()

        probs = sliding_window_inference(logits, volume[None], roi_size=tuple(inference_size), overlap=overlap,
                                         batch_size=batch_size)[0]
    pred = probs.argmax(0).numpy().astype(np.int64)
    pred[~mask] = 0
    return pred


def region_dice(pred: np.ndarray, label: np.ndarray, num_labels: int, names: list[str]) -> dict[str, float]:
    out = {f"dice_{region}": float(M.dice(np.isin(pred, labels).astype(np.int64),
                                          np.isin(label, labels).astype(np.int64), num_classes=2)[1])
           for region, labels in BRATS_REGIONS.items()}
    per_label = M.dice(pred, label, num_classes=num_labels)
    out.update({f"dice_{n}": float(v) for n, v in zip(names[1:], per_label[1:])})
    return out


@torch.inference_mode()
def evaluate_volumes(model, data: dict[str, Any], split: str, *, dataset_name: str, batch_size: int = 4,
                     limit: int | None = None, overlap: float = 0.5) -> EvaluationResult:
    """BraTS region Dice of `model` on whole volumes of the `split` subjects of `data["patches"]`."""
    options = patch_options(data, "evaluation")
    param = next(model.parameters())
    if param.device.type == "cpu" and param.dtype in (torch.float16, torch.bfloat16):
        logger.info("evaluating %s weights in float32 on the CPU (weights stored as %s)", param.dtype, param.dtype)
        model = model.float()
    subject_ids = split_subjects(options, split)[: limit or None]
    subjects = load_subjects(dataset_name, subject_ids, options, data.get("options"))
    names = label_names(model.config)
    inference_size = options.get("inference_size") or options["patch_size"]
    per_subject: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for subject in subjects:
        if subject.label is None:
            raise ValueError(f"subject {subject.subject_id}: no label map; evaluation needs labels")
        cropped = predict_volume(model, subject.image, subject.mask, inference_size, batch_size, overlap)
        pred = np.zeros(subject.full_shape, np.int64)
        label = np.zeros(subject.full_shape, np.int64)
        pred[subject.box], label[subject.box] = cropped, subject.label
        per_subject[subject.subject_id] = region_dice(pred, label, model.config.num_labels, names)
        logger.info("%s: %s", subject.subject_id,
                    ", ".join(f"{k}={v:.4f}" for k, v in per_subject[subject.subject_id].items()))
    metrics = {key: float(np.mean([m[key] for m in per_subject.values()])) for key in next(iter(per_subject.values()))}
    for subject_id, values in per_subject.items():
        metrics.update({f"{k}/{subject_id}": v for k, v in values.items() if k.startswith("dice_") and
                        k.removeprefix("dice_") in BRATS_REGIONS})
    return EvaluationResult(metrics=metrics, split=split, dataset=dataset_name, num_examples=len(subjects),
                            extra={"subjects": subject_ids, "seconds": round(time.perf_counter() - started, 1),
                                   "per_subject": per_subject})
