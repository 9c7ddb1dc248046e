"""Whole-image prediction: run a medhub model on image files, volumes and folders, and write the results.

`predict_paths(model, inputs, out_dir)` is what `medhub predict` runs. Per input it writes, always to a temporary
name in `out_dir` first and then `os.replace`d into place (a crash never leaves a half-written output):

- 2D segmenters: `<stem>_mask.png` (label values 0..K-1, uint8) and `<stem>_overlay.png` (labels over the image);
  models whose weights name an instance post-processing (`weights_info["instances"]`: the ISBI 2012 U-Net's
  `membrane_watershed` cells, `nuclei_watershed` nuclei) add `<stem>_instances.png` (16-bit instance labels 1..n,
  0 = background / watershed lines), `<stem>_instances_overlay.png` (each instance's outline in its own colour)
  and `<stem>_instances.csv` (label, area in pixels, centroid_y, centroid_x, mean_intensity of the grey image
  0-255: one row per instance, `writers.instance_rows`);
- 3D segmenters: `<stem>_seg.nii.gz`, a label volume (uint8, int16 beyond 255 labels) with the input's affine;
  for DICOM series inputs `<stem>_seg.dcm`, a DICOM SEG of the same voxels on the first series (`output_format`:
  "auto", "nifti", "dicom-seg"; see `dicom_output`);
- classifiers: one row per input in `<out>/predictions.csv` (columns: input, predicted - the label(s) at the
  decision threshold stored with the weights, `weights_info["threshold"]`, else 0.5 / the top label - then one
  probability per label; sigmoid for multi-label and one-output models, softmax for single-label), appended and
  flushed row by row; with `heatmaps` (default: for fewer than 50 inputs) `<stem>_heatmap.png`, the top class's
  CAM from the same forward pass (models ending in global average pooling + a linear `classifier`/`fc`) or else
  its Grad-CAM. Images are decoded in a background thread and same-shape images batched (`batch_size`, 16).
`<out>/medhub-manifest.jsonl` records what produced each output (input path, size, mtime; model, weights hash,
settings); an input is skipped (counted in the report) only when its outputs exist and all of these match, unless
`overwrite=True`. A run holds the folder's lock, so concurrent runs into one folder keep every row.
With `save_probabilities=True` segmenters also write their probability map and, with `tta=True`, its entropy
(`<stem>_probabilities` / `<stem>_uncertainty`, .npz for images, .nii.gz for volumes: `probabilities`);
classifier probabilities are calibrated by the temperature saved with the weights (the model's inferer).

The modules, one concern each: `cases` (which inputs make which cases; `dicom_study`: DICOM studies' series
matched to channels), `inference` (inputs through the processor and `model.infer`, back to the input's grid:
shared with `medhub evaluate`, the pipelines and the Spaces), `batches` (background decoding, same-shape batches),
`manifest` (what produced each output, the folder lock), `writers` (atomic outputs, predictions.csv, the report),
`dicom_output` (NIfTI or DICOM SEG per 3D case), `probabilities` (probability and uncertainty maps), `pictures`
(overlays), `run` (the loop).
"""

from ..inference import cell_instances, instance_options, labels_from_probabilities
from .cases import Case, collect_cases
from .inference import (
                        ImagePrediction,
                        VolumePrediction,
                        channel_names,
                        classify_batch,
                        classify_image,
                        load_image,
                        load_subject,
                        predict_subject,
                        segment_image,
                        segment_subject,
)
from .manifest import MANIFEST_NAME, OutputManifest
from .pictures import PALETTE, instance_overlay, label_overlay
from .run import predict_paths
from .writers import CSV_NAME, PredictionReport, PredictionTable, atomic_write, save_png

__all__ = ["CSV_NAME", "Case", "ImagePrediction", "PALETTE", "PredictionReport", "PredictionTable", "VolumePrediction",
           "MANIFEST_NAME", "OutputManifest", "atomic_write", "cell_instances", "channel_names", "classify_batch",
           "classify_image", "collect_cases", "instance_options",
           "instance_overlay", "label_overlay", "labels_from_probabilities", "load_image", "load_subject",
           "predict_paths", "predict_subject", "save_png", "segment_image", "segment_subject"]
