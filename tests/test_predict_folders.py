"""`medhub predict` on folders: never mislabels (manifest), never drops a row (lock, appended CSV), batched
outputs equal to one-at-a-time, and the folder mistakes users make (empty input, --out a file or inside it)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import medhub
from medhub.commands.predict import main as predict_main
from medhub.models.chexnet import CheXNetConfig
from medhub.models.unet import UNetConfig
from medhub.predict import MANIFEST_NAME, predict_paths
from medhub.processing import RadiographImageProcessor

SRC = str(Path(medhub.__file__).resolve().parents[1])


def pneumonia_pngs(shared_data, folder: Path, count: int, start: int = 0, size: int = 28) -> list[Path]:
    """PneumoniaMNIST validation images as PNG files (size: upsampled to size x size)."""
    images = np.load(shared_data / "pneumoniamnist/pneumoniamnist_trainval.npz")["val_images"]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(images[i]).resize((size, size), Image.BILINEAR).save(paths[-1])
    return paths


def tiny_classifier(folder: Path, threshold: float | None = None, resize: bool = True) -> str:
    torch.manual_seed(0)
    model = medhub.MedModel.from_config(CheXNetConfig.pneumonia(growth_rate=4, block_config=[1, 2], bn_size=2,
                                                                num_init_features=8, in_channels=1))
    model.image_processor = RadiographImageProcessor(num_channels=1, size=32, do_resize=resize)
    if threshold is not None:
        model.config.weights_info = {"threshold": threshold}
    model.save_pretrained(folder)
    return str(folder)


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def run_cli(*argv) -> int:
    return predict_main([*map(str, argv), "--no-progress"])


def test_batched_outputs_equal_one_at_a_time(shared_data, tmp_path):
    """Two shapes (64x64 and 48x48, not resized), batches of 4 vs 1: the same probabilities, labels, heatmaps."""
    model = tiny_classifier(tmp_path / "model", resize=False)
    inputs = pneumonia_pngs(shared_data, tmp_path / "in", 7, size=64) + pneumonia_pngs(shared_data, tmp_path / "in",
                                                                                       3, start=7, size=48)
    batched = predict_paths(model, [tmp_path / "in"], tmp_path / "b4", batch_size=4, heatmaps=True, progress=False)
    single = predict_paths(model, [tmp_path / "in"], tmp_path / "b1", batch_size=1, heatmaps=True, progress=False)
    assert batched.ok and single.ok and len(batched.predicted) == len(single.predicted) == 10
    rows4 = {r["input"]: r for r in read_rows(tmp_path / "b4")}
    rows1 = {r["input"]: r for r in read_rows(tmp_path / "b1")}
    assert sorted(rows4) == sorted(rows1) == sorted(map(str, inputs))
    for name, row in rows1.items():
        assert rows4[name]["predicted"] == row["predicted"]
        for label in ("normal", "pneumonia"):
            assert float(rows4[name][label]) == pytest.approx(float(row[label]), abs=2e-6)
    for path in inputs:
        a = np.asarray(Image.open(tmp_path / f"b4/{path.stem}_heatmap.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / f"b1/{path.stem}_heatmap.png"), dtype=np.int16)
        assert a.shape == (*Image.open(path).size[::-1], 3) and np.abs(a - b).max() <= 1


def test_same_names_from_another_folder_are_recomputed_not_skipped(shared_data, tmp_path):
    """Issue 15 §5: `predict dA --out o; predict dB --out o` with same-named inputs must not keep dA's masks."""
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2))
    for folder, slice_index in (("dA", 0), ("dB", 5)):
        (tmp_path / folder).mkdir()
        Image.open(shared_data / f"isbi2012-em/train/image/{slice_index}.png").crop((0, 0, 96, 96)).save(
            tmp_path / folder / "x.png")
    out = tmp_path / "o"
    assert predict_paths(model, [tmp_path / "dA"], out, progress=False).predicted
    overlay_a = np.asarray(Image.open(out / "x_overlay.png")).copy()  # the image under the labels: dA's slice
    report = predict_paths(model, [tmp_path / "dB"], out, progress=False)
    assert list(report.predicted) == [str(tmp_path / "dB/x.png")] and not report.skipped
    alone = predict_paths(model, [tmp_path / "dB"], tmp_path / "alone", progress=False)
    for name in ("x_mask.png", "x_overlay.png"):
        assert alone.ok and np.array_equal(np.asarray(Image.open(out / name)),
                                           np.asarray(Image.open(tmp_path / "alone" / name)))
    assert not np.array_equal(overlay_a, np.asarray(Image.open(out / "x_overlay.png")))
    entry = json.loads((out / MANIFEST_NAME).read_text().splitlines()[-1])
    assert entry["inputs"][0]["path"] == str((tmp_path / "dB/x.png").resolve()) and len(entry["weights"]) == 64
    # Same input again: skipped. A changed file (new size/mtime) or other weights: recomputed.
    assert predict_paths(model, [tmp_path / "dB"], out, progress=False).skipped == [str(tmp_path / "dB/x.png")]
    Image.open(shared_data / "isbi2012-em/train/image/6.png").crop((0, 0, 96, 96)).save(tmp_path / "dB/x.png")
    os.utime(tmp_path / "dB/x.png", ns=(1, 1))
    assert predict_paths(model, [tmp_path / "dB"], out, progress=False).predicted
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    assert predict_paths(model, [tmp_path / "dB"], out, progress=False).predicted


def test_two_concurrent_processes_into_one_folder_keep_every_row(shared_data, tmp_path):
    model = tiny_classifier(tmp_path / "model")
    pneumonia_pngs(shared_data, tmp_path / "p1", 6)
    pneumonia_pngs(shared_data, tmp_path / "p2", 6, start=6)
    env = {**os.environ, "PYTHONPATH": SRC}
    command = [sys.executable, "-m", "medhub.commands.predict", model, "--out", str(tmp_path / "o"), "--no-progress"]
    runs = [subprocess.Popen([*command, str(tmp_path / name)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for name in ("p1", "p2")]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    names = [row["input"] for row in read_rows(tmp_path / "o")]
    assert len(names) == 12 and len(set(names)) == 12
    assert len((tmp_path / "o" / MANIFEST_NAME).read_text().splitlines()) == 12


def test_out_inside_or_equal_to_the_input_folder_never_predicts_its_own_outputs(shared_data, tmp_path):
    model = tiny_classifier(tmp_path / "model")
    folder = tmp_path / "in"
    pneumonia_pngs(shared_data, folder, 3)
    for out in (folder / "predictions", folder):
        for _ in range(2):
            report = predict_paths(model, [folder], out, heatmaps=True, progress=False)
            assert report.ok and len(report.predicted) + len(report.skipped) == 3
        assert len(read_rows(out)) == 3 and not list(out.glob("*_heatmap_heatmap.png"))


def test_empty_input_folder_and_out_a_file_are_clear_errors(tmp_path, capsys):
    model = tiny_classifier(tmp_path / "model")
    (tmp_path / "empty").mkdir()
    assert run_cli(model, tmp_path / "empty", "--out", tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'empty'}: no PNG/JPEG/DICOM image in this folder" in err
    (tmp_path / "file.txt").write_text("not a folder")
    assert run_cli(model, tmp_path / "empty", "--out", tmp_path / "file.txt") == 2
    err = capsys.readouterr().err
    assert "--out" in err and "file.txt: a file, not a folder" in err and "Traceback" not in err


def test_predicted_label_at_the_stored_threshold_and_heatmaps_only_when_asked(shared_data, tmp_path):
    low = tiny_classifier(tmp_path / "low", threshold=0.0)
    high = tiny_classifier(tmp_path / "high", threshold=1.0)
    pneumonia_pngs(shared_data, tmp_path / "in", 4)
    assert run_cli(low, tmp_path / "in", "--out", tmp_path / "a", "--no-heatmaps") == 0
    assert run_cli(high, tmp_path / "in", "--out", tmp_path / "b") == 0
    assert {r["predicted"] for r in read_rows(tmp_path / "a")} == {"pneumonia"}
    assert {r["predicted"] for r in read_rows(tmp_path / "b")} == {"normal"}
    assert not list((tmp_path / "a").glob("*_heatmap.png")) and len(list((tmp_path / "b").glob("*_heatmap.png"))) == 4


def test_a_killed_runs_torn_manifest_line_is_ignored_and_damage_is_named(shared_data, tmp_path):
    model = medhub.MedModel.from_config(UNetConfig(base_width=4, depth=2, padding="same", num_labels=2))
    (tmp_path / "in").mkdir()
    Image.open(shared_data / "isbi2012-em/train/image/0.png").crop((0, 0, 64, 64)).save(tmp_path / "in/a.png")
    out = tmp_path / "o"
    out.mkdir()
    (out / MANIFEST_NAME).write_text('{"stem": "a", "inputs": [{"pa')  # a run killed mid-line
    assert predict_paths(model, [tmp_path / "in"], out, progress=False).predicted
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["stem"] == "a"
    assert predict_paths(model, [tmp_path / "in"], out, progress=False).skipped == [str(tmp_path / "in/a.png")]
    (out / MANIFEST_NAME).write_text("not json\n" + lines[0] + "\n")
    with pytest.raises(medhub.errors.InputError, match=f"{MANIFEST_NAME}: line 1 is not a manifest entry"):
        predict_paths(model, [tmp_path / "in"], out, progress=False)
