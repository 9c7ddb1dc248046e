"""`predict_paths(model, inputs, out_dir)`: what `medhub predict` runs over every case (see `medhub.predict`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..acceleration import with_backend
from ..auto import MedModel
from ..errors import InputError
from ..inference import instance_options
from ..inference.inferers import output_activation
from ..interpret import overlay_heatmap
from ..precision import resolve_precision
from .batches import DEFAULT_CLASSIFIER_BATCH, prefetched, same_shape_batches
from .cases import Case, collect_cases
from .dicom_output import check_case_format, check_output_format, label_volume_path, write_label_volume
from .inference import classify_batch, heatmap_on_display, load_image, predict_subject, segment_image
from .manifest import OutputManifest, folder_lock, input_record, weights_fingerprint
from .pictures import instance_outlines, label_overlay
from .probabilities import probability_paths, write_image_probabilities, write_volume_probabilities
from .writers import (
    CSV_NAME,
    PredictionReport,
    PredictionTable,
    output_paths,
    remove_stale_temporaries,
    save_instance_csv,
    save_png,
    sync_to_disk,
)

# Heatmaps are written by default for runs of fewer inputs than this (looking at each one is then plausible);
# on larger folders they cost more than the prediction itself and are written only when asked.
HEATMAP_DEFAULT_LIMIT = 50


@dataclass
class _Run:
    """One call's model, folder and bookkeeping (the manifest, predictions.csv, the report)."""

    model: Any
    out_dir: Path
    manifest: OutputManifest
    table: PredictionTable | None
    options: dict[str, Any]
    model_record: dict[str, Any]
    heatmaps: bool
    instances: bool
    report: PredictionReport
    output_format: str = "auto"
    save_probabilities: bool = False

    def outputs(self, case: Case) -> list[Path]:
        if self.model.spatial_dims == 3:
            return [label_volume_path(case, self.out_dir, self.output_format)]
        return output_paths(self.model.pipeline_tag, self.model.spatial_dims, self.out_dir, case.stem,
                            self.instances, self.heatmaps)

    def probability_files(self, case: Case) -> list[Path]:
        """Segmenters with save_probabilities: the probability (and with TTA the uncertainty) map files."""
        if not self.save_probabilities or self.model.pipeline_tag == "image-classification":
            return []
        return probability_paths(self.model.spatial_dims, self.out_dir, case.stem, bool(self.options["tta"]))

    def produced_by(self, case: Case) -> dict[str, Any]:
        paths = [*case.paths, *([case.mask] if case.mask is not None else [])]
        return json.loads(json.dumps({"inputs": input_record(paths), **self.model_record}))

    def is_done(self, case: Case) -> bool:
        """Outputs exist, the CSV has the row, and the manifest says this input, model and settings made them."""
        if case.error is not None or not all(p.is_file() for p in self.outputs(case) + self.probability_files(case)):
            return False
        if self.table is not None and case.name not in self.table.rows:
            return False
        try:
            return self.manifest.matches(case.stem, self.produced_by(case))
        except OSError:
            return False

    def finished(self, case: Case, produced_by: dict[str, Any]) -> None:
        outputs = self.outputs(case) + self.probability_files(case)
        self.manifest.record(case.stem, produced_by, outputs)
        self.report.predicted[case.name] = outputs

    def sync(self) -> None:
        sync_to_disk(self.manifest.path, *([self.table.path] if self.table is not None else []))

    def failed(self, case: Case, err: Exception) -> None:
        message = str(err) if isinstance(err, InputError) else f"{case.name}: {type(err).__name__}: {err}"
        self.report.failed.append((case.name, message))
        tqdm.write(f"medhub predict: error: {message}", file=sys.stderr)


def predict_paths(model, inputs: Sequence[str | Path], out_dir: str | Path, *, batch_size: int | None = None,
                  device: str | torch.device | None = None, tta: bool = False, roi_size: int | None = None,
                  overlap: float | None = None, overwrite: bool = False, progress: bool = True,
                  heatmaps: bool | None = None, output_format: str = "auto", precision: str | None = None,
                  backend: str = "pytorch", save_probabilities: bool = False) -> PredictionReport:
    """Predict every input (files, comma-joined channel files, folders) into `out_dir`.

    batch_size: images per forward pass for classifiers (default 16), windows/tiles per forward pass for
    segmenters (default: the weights' inference settings); roi_size, overlap: override the inference settings
    saved with the weights (None keeps them); precision: likewise (the weights' setting, exact fp32 unless they
    say otherwise; `medhub predict` passes "auto"); backend: "pytorch" or "onnxruntime" (`medhub.onnx_runtime`:
    float32 graphs checked against PyTorch). heatmaps (classifiers): write `<stem>_heatmap.png`; None: only
    for fewer than 50 inputs. output_format: "auto", "nifti" or "dicom-seg" - a 3D segmenter's labels as NIfTI
    or DICOM SEG (`dicom_output`). save_probabilities: segmenters also write the probability map (and with `tta`
    the uncertainty map: see `medhub.predict.probabilities`). A failing input is reported (printed and listed in
    the report) and the others still run."""
    if isinstance(model, (str, Path)):
        model = MedModel.from_pretrained(model)
    model = model.eval()
    if device is not None:
        model.to(device)
    model = with_backend(model, backend)
    if backend == "onnxruntime":  # float32 graphs: "auto" means fp32 there, and bf16 cannot be honoured
        if precision == "bf16":
            raise InputError("precision='bf16' with backend='onnxruntime': the onnxruntime graphs are float32")
        precision = "fp32"
    check_output_format(model, output_format)
    out_dir = _output_folder(out_dir)
    classifier = model.pipeline_tag == "image-classification"
    with folder_lock(out_dir):
        remove_stale_temporaries(out_dir)
        manifest = OutputManifest(out_dir)
        cases = collect_cases(model, inputs, out_dir, exclude=manifest.outputs)
        info = model.config.weights_info or {}
        table = PredictionTable(out_dir / CSV_NAME, model.config.labels, overwrite, info.get("threshold"),
                                output_activation(model)) if classifier else None
        settings = {"tta": tta, "roi_size": roi_size, "overlap": overlap, "precision": precision}
        record = {"model": str(getattr(model, "name_or_path", "") or type(model).__name__),
                  "weights": weights_fingerprint(model),
                  "settings": dict(settings, precision=_resolved_precision(model, precision),
                                   save_probabilities=save_probabilities)}
        run = _Run(model, out_dir, manifest, table, dict(settings, batch_size=batch_size), record,
                   len(cases) < HEATMAP_DEFAULT_LIMIT if heatmaps is None else heatmaps,
                   model.pipeline_tag == "image-segmentation" and model.spatial_dims == 2
                   and instance_options(model) is not None, PredictionReport(), output_format, save_probabilities)
        todo = []
        for case in cases:
            if not overwrite and run.is_done(case):
                run.report.skipped.append(case.name)
            else:
                todo.append(case)
        bar = tqdm(total=len(todo), desc="medhub predict", unit="input", disable=not progress)
        try:
            if classifier:
                _classify_cases(run, todo, batch_size or DEFAULT_CLASSIFIER_BATCH, bar)
            else:
                for case in todo:
                    _segment_case(run, case)
                    bar.update()
        finally:
            bar.close()
            if table is not None:
                table.close()
    return run.report


def _resolved_precision(model, precision: str | None) -> str:
    """What the forward passes run in ("fp32" / "bf16"). The manifest records this rather than the request, so that
    "auto" on a CPU without native bf16 and "fp32" count as the same settings."""
    requested = precision or model.inferer().settings.precision
    return resolve_precision(requested, next(model.parameters()).device.type)


def _output_folder(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: a file, not a folder; give a folder for the outputs")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"--out {out_dir}: cannot create the output folder ({err.strerror or err})") from None
    return out_dir


def _single_image(case: Case) -> Path:
    if case.error is not None:
        raise InputError(case.error)
    if len(case.paths) != 1:
        raise InputError(f"{case.name}: {len(case.paths)} files joined by commas; a 2D model takes one image per input")
    return case.paths[0]


def _classify_cases(run: _Run, cases: list[Case], batch_size: int, bar) -> None:
    """Classifiers: inputs decoded ahead in a thread, same-shape images batched, the CAM from the same forward."""
    def load(case: Case):
        image = _single_image(case)
        return run.produced_by(case), load_image(run.model, image)

    loaded = prefetched(load, cases, depth=2 * batch_size)
    for batch in same_shape_batches(loaded, batch_size, shape=lambda value: value[1][2].shape):
        if isinstance(batch[0][1], Exception):
            run.failed(batch[0][0], batch[0][1])
            bar.update()
            continue
        try:
            _classify_batch(run, batch)
        except Exception:  # noqa: BLE001 - retried one by one below, so that only the bad input fails
            for one in batch:
                try:
                    _classify_batch(run, [one])
                except Exception as err:  # noqa: BLE001 - one bad input must not stop a folder
                    run.failed(one[0], err)
        run.sync()
        bar.update(len(batch))


def _classify_batch(run: _Run, batch: list) -> None:
    pixel_values = torch.cat([value[1][2] for _, value in batch])
    probs, heatmaps = classify_batch(run.model, pixel_values, heatmaps=run.heatmaps, tta=run.options["tta"],
                                     precision=run.options["precision"])
    for (case, (produced_by, (image, processor, _, display))), p, heatmap in zip(batch, probs, heatmaps):
        if run.heatmaps:
            shown, resized = heatmap_on_display(processor, image, display, heatmap)
            save_png(overlay_heatmap(shown, resized), run.outputs(case)[0])
        run.table.add(case.name, p.numpy())
        run.finished(case, produced_by)


def _segment_case(run: _Run, case: Case) -> None:
    try:
        if case.error is not None:
            raise InputError(case.error)
        produced_by = run.produced_by(case)
        _write_segmentation(run.model, case, run.outputs(case), run.options, run.probability_files(case))
        run.finished(case, produced_by)
        run.sync()
    except Exception as err:  # noqa: BLE001 - one bad input must not stop a folder; reported below
        run.failed(case, err)


def _write_segmentation(model, case: Case, outputs: list[Path], options: dict[str, Any],
                        probability_files: list[Path]) -> None:
    if model.spatial_dims == 3:
        check_case_format(case, outputs[0])
        volume = predict_subject(model, case.paths, case.mask, where=case.name, **options)
        write_label_volume(model, case, volume.labels, volume.affine, outputs[0])
        if probability_files:
            write_volume_probabilities(volume, probability_files)
        return
    result = segment_image(model, _single_image(case), **options)
    save_png(result.labels if result.labels.dtype == np.uint8 else result.labels.astype(np.uint16), outputs[0])
    save_png(label_overlay(result.display, result.labels), outputs[1])
    if probability_files:
        write_image_probabilities(result, model.config.labels, probability_files)
    if len(outputs) == 5 and result.instances is not None:
        if result.instances.max() > np.iinfo(np.uint16).max:
            raise InputError(f"{case.name}: {result.instances.max()} cells; a 16-bit instances PNG holds 65535")
        save_png(result.instances.astype(np.uint16), outputs[2])
        save_png(instance_outlines(result.display, result.instances), outputs[3])
        save_instance_csv(result.instances, result.display, outputs[4])


__all__ = ["HEATMAP_DEFAULT_LIMIT", "predict_paths"]
