"""`predict_paths(model, inputs, out_dir)`: what `medhub predict` runs over every case (see `medhub.predict`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..auto import MedModel
from ..errors import InputError
from ..inference import instance_options
from ..interpret import overlay_heatmap
from ..io import save_nifti
from .cases import Case, collect_cases
from .inference import classify_image, predict_subject, segment_image
from .pictures import instance_overlay, label_overlay
from .probabilities import probability_paths, write_image_probabilities, write_volume_probabilities
from .writers import (
    CSV_NAME,
    PredictionReport,
    PredictionTable,
    atomic_write,
    output_paths,
    remove_stale_temporaries,
    save_png,
)


def predict_paths(model, inputs: Sequence[str | Path], out_dir: str | Path, *, batch_size: int | None = None,
                  device: str | torch.device | None = None, tta: bool = False, roi_size: int | None = None,
                  overlap: float | None = None, overwrite: bool = False, progress: bool = True,
                  save_probabilities: bool = False) -> PredictionReport:
    """Predict every input (files, comma-joined channel files, folders) into `out_dir`.

    batch_size, roi_size, overlap: override the inference settings saved with the weights (None keeps them).
    save_probabilities: segmenters also write the probability map (and with `tta` the uncertainty map: see
    `medhub.predict.probabilities`).
    A failing input is reported (printed and listed in the report) and the others still run."""
    if isinstance(model, (str, Path)):
        model = MedModel.from_pretrained(model)
    model = model.eval()
    if device is not None:
        model.to(device)
    task, dims = model.pipeline_tag, model.spatial_dims
    instances = task == "image-segmentation" and dims == 2 and instance_options(model) is not None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    classifier = task == "image-classification"
    table = PredictionTable(out_dir / CSV_NAME, model.config.labels, overwrite) if classifier else None
    options = dict(tta=tta, batch_size=batch_size, roi_size=roi_size, overlap=overlap)
    report = PredictionReport()
    cases = collect_cases(model, inputs, out_dir)
    for case in tqdm(cases, desc="medhub predict", unit="input", disable=not progress):
        outputs = output_paths(task, dims, out_dir, case.stem, instances)
        extra = probability_paths(dims, out_dir, case.stem, tta) if save_probabilities and not classifier else []
        done = all(p.is_file() for p in outputs + extra) and (table is None or case.name in table.rows)
        if done and not overwrite and case.error is None:
            report.skipped.append(case.name)
            continue
        try:
            if case.error is not None:
                raise InputError(case.error)
            _predict_case(model, case, outputs, table, options, extra)
            report.predicted[case.name] = outputs + extra
        except Exception as err:  # noqa: BLE001 - one bad input must not stop a folder; reported below
            message = str(err) if isinstance(err, InputError) else f"{case.name}: {type(err).__name__}: {err}"
            report.failed.append((case.name, message))
            tqdm.write(f"medhub predict: error: {message}", file=sys.stderr)
    return report


def _predict_case(model, case: Case, outputs: list[Path], table: PredictionTable | None,
                  options: dict[str, Any], probability_files: list[Path]) -> None:
    if model.spatial_dims == 3:
        volume = predict_subject(model, case.paths, case.mask, where=case.name, **options)
        atomic_write(outputs[0], lambda tmp: save_nifti(volume.labels, volume.affine, tmp))
        if probability_files:
            write_volume_probabilities(volume, probability_files)
        return
    if len(case.paths) != 1:
        raise InputError(f"{case.name}: {len(case.paths)} files joined by commas; a 2D model takes one image per input")
    if table is not None:
        result = classify_image(model, case.paths[0], tta=options["tta"])
        save_png(overlay_heatmap(result.display, result.heatmap), outputs[0])
        table.add(case.name, result.probs)
        return
    result = segment_image(model, case.paths[0], **options)
    save_png(result.labels if result.labels.dtype == np.uint8 else result.labels.astype(np.uint16), outputs[0])
    save_png(label_overlay(result.display, result.labels), outputs[1])
    if probability_files:
        write_image_probabilities(result, model.config.labels, probability_files)
    if len(outputs) == 4 and result.instances is not None:
        if result.instances.max() > np.iinfo(np.uint16).max:
            raise InputError(f"{case.name}: {result.instances.max()} cells; a 16-bit instances PNG holds 65535")
        save_png(result.instances.astype(np.uint16), outputs[2])
        save_png(instance_overlay(result.display, result.instances), outputs[3])


__all__ = ["predict_paths"]
