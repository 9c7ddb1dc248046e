"""Crash-safe work: `kill -9` of a training run or of `medhub predict`, then a rerun, loses nothing.

- training: a tiny deterministic U-Net recipe (real ISBI 2012 crops) is SIGKILLed right after its first
  checkpoint appears; every checkpoint on disk is complete (written under a temporary name, then renamed);
  `medhub train --resume` finishes, with exactly the weights of an uninterrupted run;
- prediction: `medhub predict` over a folder is SIGKILLed after its first outputs; no half-written output
  exists; the rerun skips the finished inputs, completes the rest, and matches an uninterrupted run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from medhub.weights_files import check_safetensors_file

RECIPE = {
    "name": "crash-safety-tiny-unet",
    "seed": 3,
    "model": {"type": "unet", "config": {"in_channels": 1, "num_labels": 2, "base_width": 4, "depth": 2,
                                         "padding": "same", "norm": "batch", "dropout": 0.1, "loss": "ce"}},
    "data": {"name": "isbi2012", "options": {"val_slices": 4}, "crop": [64, 64],
             "label_values": {255: 1}},
    "training": {"max_steps": 16, "per_device_train_batch_size": 2, "learning_rate": 0.01, "logging_steps": 1,
                 "save_strategy": "steps", "save_steps": 2, "disable_tqdm": True, "use_cpu": True,
                 "dataloader_num_workers": 0},
    "evaluation": {"metric": "mean_dice"},
}


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def _medhub(*args: str) -> list[str]:
    return [sys.executable, "-m", "medhub", *args]


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])) if folder.is_dir() else []


def _assert_complete(checkpoint: Path) -> None:
    names = {p.name for p in checkpoint.iterdir()}
    assert {"model.safetensors", "config.json", "trainer_state.json", "optimizer.pt", "scheduler.pt"} <= names, names
    check_safetensors_file(checkpoint / "model.safetensors")


def _kill_after(cmd: list[str], ready, timeout: float = 300) -> subprocess.Popen:
    """Start `cmd`, SIGKILL it as soon as `ready()` is true; return the dead process."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "nothing to kill after: timed out"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc


def test_training_killed_after_first_checkpoint_resumes_to_identical_weights(shared_data, tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    killed, reference = tmp_path / "killed", tmp_path / "reference"

    _kill_after(_medhub("train", str(recipe), "--output-dir", str(killed)), lambda: bool(_checkpoints(killed)))
    assert not (killed / "model.safetensors").exists()  # really interrupted before the end
    assert _checkpoints(killed), "no checkpoint survived the kill"
    for checkpoint in _checkpoints(killed):  # never a half-written checkpoint under its final name
        _assert_complete(checkpoint)
    assert not [p for p in killed.iterdir() if p.name.startswith("tmp-checkpoint")]

    run = subprocess.run(_medhub("train", str(recipe), "--output-dir", str(killed), "--resume"), env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    run = subprocess.run(_medhub("train", str(recipe), "--output-dir", str(reference)), env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    resumed, uninterrupted = load_file(killed / "model.safetensors"), load_file(reference / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    different = [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])]
    assert not different, f"resumed weights differ from the uninterrupted run: {different}"
    assert not (killed / ".medhub-tmp-checkpoint").exists() and not (killed / ".medhub-tmp-final").exists()


@pytest.fixture
def tiny_unet(tmp_path):
    from medhub import MedConfig, MedModel

    torch.manual_seed(0)
    folder = tmp_path / "unet"
    config = MedConfig.for_model("medhub-unet", in_channels=1, num_labels=2, base_width=4, depth=2, padding="same")
    MedModel.from_config(config).save_pretrained(folder)
    return folder


def test_predict_killed_and_rerun_skips_finished_outputs_and_completes(shared_data, tmp_path, tiny_unet):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for n in range(12):
        image = Image.open(shared_data / "isbi2012-em" / "train" / "image" / f"{n}.png")
        image.crop((0, 0, 256, 256)).save(inputs / f"slice{n:02d}.png")
    out, reference = tmp_path / "out", tmp_path / "reference"
    masks = lambda folder: sorted(folder.glob("*_mask.png")) if folder.is_dir() else []  # noqa: E731

    _kill_after(_medhub("predict", str(tiny_unet), str(inputs), "--out", str(out), "--no-progress"),
                lambda: len(masks(out)) >= 2)
    finished = {p.name for p in out.glob("*.png") if not p.name.startswith(".")}  # not the temporary files
    assert 0 < len(masks(out)) < 12
    for name in finished:  # every output under its final name is complete
        Image.open(out / name).load()

    rerun = subprocess.run(_medhub("predict", str(tiny_unet), str(inputs), "--out", str(out), "--no-progress"),
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(masks(out)) == 12
    assert not [p for p in out.iterdir() if p.name.startswith(".medhub-tmp-")]  # stale temporary files removed
    clean = subprocess.run(_medhub("predict", str(tiny_unet), str(inputs), "--out", str(reference), "--no-progress"),
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-3000:]
    for mask in masks(reference):
        assert np.array_equal(np.asarray(Image.open(mask)), np.asarray(Image.open(out / mask.name))), mask.name
    done_before = {n.removesuffix("_mask.png") for n in finished if n.endswith("_mask.png")
                   and n.replace("_mask", "_overlay") in finished}
    counts = re.search(r"(\d+) predicted, (\d+) skipped", rerun.stdout)
    assert counts, rerun.stdout
    assert int(counts.group(2)) == len(done_before) >= 1  # finished inputs are not recomputed
    assert int(counts.group(1)) == 12 - len(done_before)
