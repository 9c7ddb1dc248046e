"""Row 9: `medhub predict` on a folder of 100 PneumoniaMNIST PNGs vs a bare batched read + preprocess + forward.

Side by side in one process, interleaved: "bare" is what a user would write by hand (PIL reads, the saved
processor on a list of 16 images, one forward, softmax); "predict_paths" is `medhub predict` without the process
start (the manifest, the lock, predictions.csv appended row by row, heatmaps off as the default for >= 50 inputs),
into a fresh output folder each time. The cold CLI (`python -m medhub.cli predict ...`, one process, import and
model load included) is timed once with and once without heatmaps.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import ROOT, SHARED_DATA, Table, alternate, zoo_or_reference
from PIL import Image

from medhub.inference.inferers import activate, output_activation
from medhub.predict import predict_paths

ZOO_ID = "resnet18-pneumonia"
COUNT = 100
BATCH = 16
TARGET = 0.5  # issue 18: >= 50 % of the bare batched throughput


def write_pngs(folder: Path, count: int) -> list[Path]:
    with np.load(SHARED_DATA / "pneumoniamnist/pneumoniamnist_trainval.npz") as data:
        images = data["val_images"][:count]
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:03d}.png" for i in range(len(images))]
    for path, image in zip(paths, images):
        Image.fromarray(image).save(path)
    return paths


def run(repeats: int, quick: bool, compile_: bool) -> list[Table]:
    table = Table(f"Row 9: medhub predict on a folder of {COUNT} PneumoniaMNIST PNGs (28x28) vs bare batched "
                  "(s per folder: median [min-max])",
                  ["model", "bare read + preprocess + forward (batch 16)", "predict_paths (batch 16, no heatmaps)",
                   "throughput vs bare (target >= 50 %)", "CLI cold, no heatmaps", "CLI cold, --heatmaps",
                   "max abs prob diff"])
    if not (SHARED_DATA / "pneumoniamnist").is_dir():
        table.note(f"skipped: {SHARED_DATA}/pneumoniamnist absent")
        return [table]
    model, where = zoo_or_reference(ZOO_ID)
    processor = model.image_processor or model.default_image_processor()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = write_pngs(tmp / "pngs", COUNT)
        bare_probs: list[np.ndarray] = []
        counter = itertools.count()

        def bare():
            bare_probs.clear()
            for start in range(0, len(paths), BATCH):
                images = [np.asarray(Image.open(p)) for p in paths[start:start + BATCH]]
                pixel_values = processor(images, return_tensors="pt")["pixel_values"]
                with torch.inference_mode():
                    logits = model(pixel_values=pixel_values).logits
                bare_probs.append(activate(logits.float(), output_activation(model)).numpy())

        def ours():
            report = predict_paths(model, [tmp / "pngs"], tmp / f"out{next(counter)}", batch_size=BATCH,
                                   progress=False)
            assert report.ok and len(report.predicted) == COUNT

        timings = alternate({"bare": bare, "ours": ours}, repeats)
        diff = _max_diff(tmp / f"out{next(counter) - 1}/predictions.csv", paths, np.concatenate(bare_probs))
        cold = [_cli(tmp / "pngs", tmp / f"cli{i}", heatmaps) for i, heatmaps in enumerate((False, True))]
    share = timings["bare"].median / timings["ours"].median
    table.add(where, timings["bare"].s(), timings["ours"].s(),
              f"{share * 100:.0f} % ({COUNT / timings['ours'].median:.0f} vs {COUNT / timings['bare'].median:.0f} "
              f"images/s){'' if share >= TARGET else ' - below target'}", f"{cold[0]:.1f}", f"{cold[1]:.1f}",
              f"{diff:.1e}")
    table.note(f"load average at the end of the row: {'/'.join(f'{v:.2f}' for v in os.getloadavg())} "
               f"({os.cpu_count()} cores); torch threads {torch.get_num_threads()}")
    return [table]


def _max_diff(csv_path: Path, paths: list[Path], bare: np.ndarray) -> float:
    import csv

    with open(csv_path, newline="") as fh:
        rows = {r["input"]: r for r in csv.DictReader(fh)}
    labels = [k for k in next(iter(rows.values())) if k not in ("input", "predicted")]
    ours = np.array([[float(rows[str(p)][k]) for k in labels] for p in paths])
    return float(np.abs(ours - bare).max())


def _cli(folder: Path, out: Path, heatmaps: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "medhub.cli", "predict", str(ROOT / "model_zoo" / ZOO_ID), str(folder), "--out",
           str(out), "--no-progress", "--heatmaps" if heatmaps else "--no-heatmaps"]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


__all__ = ["run"]
