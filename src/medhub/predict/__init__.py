"""Whole-image prediction: run a medhub model on image files, volumes and folders, and write the results.

`predict_paths(model, inputs, out_dir)` is what `medhub predict` runs. Per input it writes, always to a temporary
name in `out_dir` first and then `os.replace`d into place (a crash never leaves a half-written output):

- 2D segmenters: `<stem>_mask.png` (label values 0..K-1, uint8) and `<stem>_overlay.png` (labels over the image);
  models whose weights name a cell-instance post-processing (`weights_info["instances"]`, the ISBI 2012 U-Net)
  add `<stem>_instances.png` (16-bit cell labels 1..n, 0 on the watershed lines) and
  `<stem>_instances_overlay.png` (each cell in its own colour), from `medhub.inference.membrane_watershed`;
- 3D segmenters: `<stem>_seg.nii.gz`, a label volume (uint8, int16 beyond 255 labels) with the input's affine;
- classifiers: one row per input in `<out>/predictions.csv` (columns: input, then one per label; sigmoid for
  multi-label and one-output models, softmax for single-label) and `<stem>_heatmap.png`, the top class's CAM
  (models ending in global average pooling + a linear `classifier`/`fc`) or else its Grad-CAM over the image.
- with `save_probabilities=True` segmenters also write their probability map and, with `tta=True`, its entropy
  (`<stem>_probabilities` / `<stem>_uncertainty`, .npz for images, .nii.gz for volumes: `probabilities`);
  classifier probabilities are calibrated by the temperature saved with the weights (the model's inferer).
An input whose outputs all exist is skipped (counted in the report) unless `overwrite=True`.

The modules, one concern each: `cases` (which inputs make which cases), `inference` (one input through the
processor and `model.infer`, back to the input's grid: shared with `medhub evaluate`, the pipelines and the
Spaces), `writers` (atomic outputs, predictions.csv, the report), `pictures` (overlays), `probabilities`
(probability and uncertainty maps), `run` (the loop).
"""

from ..inference import cell_instances, instance_options, labels_from_probabilities
from .cases import Case, collect_cases
from .inference import (
                        ImagePrediction,
                        VolumePrediction,
                        channel_names,
                        classify_image,
                        load_image,
                        load_subject,
                        predict_subject,
                        segment_image,
                        segment_subject,
)
from .pictures import PALETTE, instance_overlay, label_overlay
from .run import predict_paths
from .writers import CSV_NAME, PredictionReport, PredictionTable, atomic_write, save_png

__all__ = ["CSV_NAME", "Case", "ImagePrediction", "PALETTE", "PredictionReport", "PredictionTable", "VolumePrediction",
           "atomic_write", "cell_instances", "channel_names", "classify_image", "collect_cases", "instance_options",
           "instance_overlay", "label_overlay", "labels_from_probabilities", "load_image", "load_subject",
           "predict_paths", "predict_subject", "save_png", "segment_image", "segment_subject"]
