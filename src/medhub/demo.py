"""`medhub demo`, the main job: a browser demo of every model family, served offline on 127.0.0.1:7860.

`run_demo()` serves `medhub.spaces.build_app()`: one tab per zoo model, each loaded with
`MedModel.from_pretrained("medhub/<id>")` (HF_HUB_OFFLINE=1 unless set: the local zoo is the embedded default);
a model not in the zoo yet runs with random weights under a prominent "untrained" banner. Examples come from
../shared/data (or MEDHUB_EXAMPLES_DIR / --data) when present.

`run_batch_demo()` (`run_demo(batch=True)`) is the non-interactive variant: every model family run on real
scans from ../shared/data, pictures written to a folder.

For each zoo id, the model is loaded with `MedModel.from_pretrained("medhub/<id>")` (Hub, then the local zoo).
An id that no source has yet is built from its family's reference configuration with random weights, and the
output says so on every line: those predictions only show that the pipeline runs end to end. Predictions go
through `medhub.predict.predict_paths`, so the pictures in `out/demo/<id>/` are what `medhub predict` writes.
The 3D models run on a centred crop of a BraTS subject (written, with its affine, to the output folder) so the
whole demo finishes in about two minutes on 2 CPU cores.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from huggingface_hub import constants

from .predict import label_overlay, predict_paths, save_png
from .shared_data import data_dir as default_data_dir
from .zoo.catalog import CHECKPOINTS
from .zoo.loading import load_checkpoint

# The batch demo's inputs per demo kind (paths relative to the data folder); 3D models get a crop of a subject.
BATCH_EXAMPLES = {"classify": ("chest-xray-samples/00000001_000.png", "chest-xray-samples/16747_3_1.jpg",
                               "chest-xray-samples/Fake_MONOHR1.dcm"),
                  "segment2d": ("isbi2012-em/unlabeled/test_0.png",)}


def _brats_crop(data: Path, out: Path, size=(64, 64, 40)) -> Path:
    """A centred crop of pat0003 (both channels and the brain mask), saved with the matching affine."""
    subject = data / "brats2015-examples" / "brats_2013_pat0003_1"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("Flair_subtrMeanDivStd.nii.gz", "T1c_subtrMeanDivStd.nii.gz", "brainmask.nii.gz"):
        image = nib.load(subject / name)
        starts = [(s - c) // 2 for s, c in zip(image.shape, size)]
        crop = image.slicer[tuple(slice(a, a + c) for a, c in zip(starts, size))]
        nib.save(nib.Nifti1Image(np.asarray(crop.dataobj, dtype=np.float32), crop.affine), out / name)
    return out


def _volume_picture(report, crop: Path, out: Path) -> None:
    """An axial-slice overlay PNG of each 3D prediction (pictures are easier to judge than numbers)."""
    for paths in report.predicted.values():
        for seg_path in (p for p in paths if p.name.endswith("_seg.nii.gz")):
            labels = np.asarray(nib.load(seg_path).dataobj)
            flair = np.asarray(nib.load(crop / "Flair_subtrMeanDivStd.nii.gz").dataobj)
            z = labels.shape[2] // 2
            grey = flair[:, :, z]
            grey = ((grey - grey.min()) / max(float(np.ptp(grey)), 1e-6) * 255).astype(np.uint8)
            picture = label_overlay(np.rot90(grey), np.rot90(labels[:, :, z]))
            picture = np.repeat(np.repeat(picture, 4, axis=0), 4, axis=1)  # small crops: enlarge for viewing
            save_png(picture, out / seg_path.name.replace("_seg.nii.gz", "_axial_overlay.png"))


def _summary(model, report, out: Path) -> str:
    if model.pipeline_tag == "image-classification" and (out / "predictions.csv").is_file():
        rows = list(csv.DictReader(open(out / "predictions.csv")))
        parts = []
        for row in rows:
            scores = {k: float(row[k]) for k in model.config.labels}
            top = max(scores, key=scores.get)
            parts.append(f"{Path(row['input']).name}: {top} {scores[top]:.2f}")
        return "; ".join(parts)
    return ", ".join(f"{Path(name).name} -> {', '.join(p.name for p in sorted(out.glob(Path(name).stem + '*')))}"
                     for name in report.predicted)


def run_demo(out_dir: str | Path | None = None, data_dir: str | Path | None = None, host: str = "127.0.0.1",
             port: int = 7860, batch: bool = False, models: list[str] | None = None) -> int:
    """Serve every model in one app (tabs) on host:port until interrupted; batch=True: `run_batch_demo`."""
    if batch:
        return run_batch_demo(out_dir or "out/demo", data_dir)
    if "HF_HUB_OFFLINE" not in os.environ:
        # huggingface_hub reads the variable once, at import (transformers imported it already): set both.
        os.environ["HF_HUB_OFFLINE"] = "1"
        constants.HF_HUB_OFFLINE = True
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if data_dir:
        os.environ["MEDHUB_EXAMPLES_DIR"] = str(data_dir)
    from .spaces import build_app, launch  # the `spaces` extra (gradio): only the served demo needs it
    from .spaces.loading import load_model
    from .spaces.uploads import examples_dir

    folder = examples_dir()
    print(f"medhub demo: loading models (examples: {folder or 'none - ../shared/data not found'})")
    loaded = {}
    for model_id in models or [c.id for c in CHECKPOINTS]:
        loaded[model_id] = load_model(model_id)
        state = "trained" if loaded[model_id].trained else "UNTRAINED (random weights: outputs are meaningless)"
        print(f"  {loaded[model_id].repo_id}: {state}; {loaded[model_id].source}")
    app = build_app(list(loaded), folder, models=loaded)
    print(f"medhub demo: serving http://{host}:{port} (Ctrl-C to stop). Research use only, not a medical device.")
    launch(app, host=host, port=port, examples_folder=folder, quiet=True)
    return 0


def run_batch_demo(out_dir: str | Path = "out/demo", data_dir: str | Path | None = None) -> int:
    """Every model family on real scans from ../shared/data, pictures and predictions written to `out_dir`."""
    data = Path(data_dir) if data_dir else default_data_dir()
    if data is None or not data.is_dir():
        print("medhub demo: no example data found (set MEDHUB_DATA_DIR to a folder laid out like ../shared/data)")
        return 1
    out_dir = Path(out_dir)
    crop = _brats_crop(data, out_dir / "brats_pat0003_crop")
    print(f"medhub demo: every model family on real scans from {data}; pictures in {out_dir}/\n")
    untrained = []
    for checkpoint in CHECKPOINTS:
        start = time.perf_counter()
        loaded = load_checkpoint(checkpoint.id)  # the served demo's loading, untrained fallback included
        model = loaded.model
        state = "trained" if loaded.trained else "UNTRAINED (random weights: predictions are meaningless)"
        if not loaded.trained:
            untrained.append(checkpoint.id)
        inputs = [crop] if checkpoint.demo == "segment3d" else [data / p for p in BATCH_EXAMPLES[checkpoint.demo]]
        target = out_dir / checkpoint.id
        report = predict_paths(model, inputs, target, overwrite=True, progress=False, precision="auto")
        if checkpoint.demo == "segment3d":
            _volume_picture(report, crop, target)
        status = "ok" if report.ok else f"FAILED: {report.failed}"
        print(f"{loaded.repo_id} [{state}] {type(model).__name__}, {model.num_parameters():,} parameters, "
              f"{time.perf_counter() - start:.1f} s, {status}\n    {_summary(model, report, target)}")
    if untrained:
        print(f"\n{len(untrained)} model(s) ran with untrained weights because neither the Hub nor the local zoo has "
              f"them yet: {', '.join(untrained)} (see `medhub zoo list`).")
    return 0
