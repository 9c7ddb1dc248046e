"""Is a segmenter's uncertainty informative? The Dice of its most uncertain pixels/voxels against the rest.

`uncertainty_dice(model, data, split)` predicts every image (2D) or subject (3D) of the split through the path
users run, with flip test-time augmentation (`model.infer(..., tta=True)`, as `medhub predict --tta`), takes the
predictive entropy of the TTA-averaged probabilities (`medhub.metrics.predictive_entropy`, the uncertainty map
`medhub predict --tta --save-probabilities` writes), pools every pixel/voxel of the split, and scores the
foreground (label > 0: cell interior for ISBI 2012, the whole tumour for BraTS) by Dice separately on the
`fraction` (10 %) of them with the highest entropy and on the rest. A much lower Dice on the uncertain part
means the map shows users where not to trust the mask. Voxels outside a ROI mask are certain background.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.recipe_data import load_rows, map_label_values, subject_rows, subject_volumes
from ..errors import ConfigError, InputError
from ..metrics.calibration import predictive_entropy
from ..predict.inference import input_processor, predict_subject, segment_image
from .evaluate import _columns

__all__ = ["split_dice", "uncertainty_dice"]


def split_dice(pred: np.ndarray, target: np.ndarray, entropy: np.ndarray, fraction: float = 0.1) -> dict[str, Any]:
    """Foreground Dice on the `fraction` of elements with the highest entropy and on the rest (flat arrays)."""
    if not 0.0 < fraction < 1.0:
        raise InputError(f"fraction={fraction!r}: expected a number in (0, 1)")
    if not pred.shape == target.shape == entropy.shape:
        raise InputError(f"shapes differ: pred {pred.shape}, target {target.shape}, entropy {entropy.shape}")
    count = int(round(fraction * entropy.size))
    order = np.argsort(-entropy.ravel(), kind="stable")
    uncertain = np.zeros(entropy.size, dtype=bool)
    uncertain[order[:count]] = True
    p, t = pred.ravel() > 0, target.ravel() > 0

    def dice(mask: np.ndarray) -> float:
        both = 2 * np.sum(p[mask] & t[mask])
        total = np.sum(p[mask]) + np.sum(t[mask])
        return float(both / total) if total else 1.0

    return {"fraction": fraction, "dice_uncertain": dice(uncertain), "dice_rest": dice(~uncertain),
            "entropy_cutoff": float(entropy.ravel()[order[count - 1]]) if count else None,
            "elements": int(entropy.size)}


def uncertainty_dice(model, data: dict[str, Any], split: str = "validation", fraction: float = 0.1) -> dict:
    """`split_dice` over the whole split (see the module docstring), with the images/subjects it used."""
    preds, targets, entropies, names = [], [], [], []
    if model.spatial_dims == 3:
        processor = input_processor(model)
        channels = list(getattr(processor, "channel_names", None) or [])
        options = dict(data.get("patches") or {})
        mask_column = getattr(processor, "mask_name", None) or options.get("mask")
        label_column = options.get("label", "label")
        for row in subject_rows(data, split):
            subject = str(row.get("subject_id") or row.get("id") or len(names))
            volumes = subject_volumes(row, subject, channels + [label_column])
            mask = subject_volumes(row, subject, [mask_column])[mask_column] if mask_column in row else None
            result = predict_subject(model, {c: volumes[c] for c in channels}, mask, where=subject, tta=True)
            preds.append(result.labels)
            targets.append(np.rint(volumes[label_column].array).astype(np.int64))
            entropies.append(predictive_entropy(result.reference_probabilities(), axis=0))
            names.append(subject)
    else:
        rows = load_rows(data, split)
        image_key, target_key = _columns(rows)
        label_values = {int(k): int(v) for k, v in (data.get("label_values") or {}).items()} or None
        for index, row in enumerate(rows):
            result = segment_image(model, row[image_key], tta=True)
            preds.append(result.labels)
            targets.append(map_label_values(np.asarray(row[target_key]), label_values))
            entropies.append(predictive_entropy(result.probs, axis=0))
            names.append(str(row.get("id", index)))
    if not preds:
        raise ConfigError(f"{data.get('name') or data.get('path')} {split}: nothing to evaluate")
    flat = [np.concatenate([a.ravel() for a in arrays]) for arrays in (preds, targets, entropies)]
    foreground = [str(model.config.id2label.get(k, k)) for k in range(1, model.config.num_labels)]
    return {**split_dice(*flat, fraction=fraction), "split": split, "tta": True, "items": names,
            "foreground": foreground, "unit": "voxels" if model.spatial_dims == 3 else "pixels"}
