"""`medhub predict --save-probabilities`: a segmenter's per-class probability map, and with `--tta` its
uncertainty map, next to the label map.

- 2D: `<stem>_probabilities.npz` with `probabilities` (K, H, W) float32 at the image's own size (each pixel's K
  values sum to 1 for softmax models) and `labels` (K,) the label names; with `--tta` `<stem>_uncertainty.npz`
  with `entropy` (H, W) float32;
- 3D: `<stem>_probabilities.nii.gz`, a 4-D float32 volume (X, Y, Z, K) in the input's geometry (the label map's
  affine), and with `--tta` `<stem>_uncertainty.nii.gz` (X, Y, Z) float32.

The uncertainty is the predictive entropy -sum_k p_k log p_k (nats; 0 = certain, at most log K) of the
probabilities averaged over the flip-TTA members (`medhub.inference.tta`): high where the flipped copies
disagree or each is unsure. Classifiers write their probabilities to predictions.csv already; no file here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import save_nifti
from ..metrics.calibration import predictive_entropy
from .inference import ImagePrediction, VolumePrediction
from .writers import atomic_write

__all__ = ["probability_paths", "write_image_probabilities", "write_volume_probabilities"]


def probability_paths(dims: int, out_dir: Path, stem: str, tta: bool) -> list[Path]:
    """[probabilities file] plus, with TTA, [uncertainty file] for one case."""
    suffix = ".npz" if dims == 2 else ".nii.gz"
    names = ["probabilities", "uncertainty"] if tta else ["probabilities"]
    return [out_dir / f"{stem}_{name}{suffix}" for name in names]


def write_image_probabilities(result: ImagePrediction, label_names: list[str], paths: list[Path]) -> None:
    probs = np.asarray(result.probs, dtype=np.float32)
    names = np.array([str(n) for n in label_names])
    atomic_write(paths[0], lambda tmp: np.savez_compressed(tmp, probabilities=probs, labels=names))
    if len(paths) > 1:
        entropy = predictive_entropy(probs, axis=0).astype(np.float32)
        atomic_write(paths[1], lambda tmp: np.savez_compressed(tmp, entropy=entropy))


def write_volume_probabilities(result: VolumePrediction, paths: list[Path]) -> None:
    probs = result.reference_probabilities().astype(np.float32)  # (K, X, Y, Z) on the label map's grid
    atomic_write(paths[0], lambda tmp: save_nifti(np.moveaxis(probs, 0, -1), result.affine, tmp))
    if len(paths) > 1:
        entropy = predictive_entropy(probs, axis=0).astype(np.float32)
        atomic_write(paths[1], lambda tmp: save_nifti(entropy, result.affine, tmp))
