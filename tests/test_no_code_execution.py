"""No code execution from model files, and no allocation from absurd configs, on every load path.

A malicious pickle (unpickling it creates a marker file) sits in a model folder, a zoo entry and a checkpoint
handed to `medhub convert`. Each path - `MedModel.from_pretrained`, transformers' Auto classes after
`import medhub`, `medhub convert`, `medhub predict`, the Spaces' `load_model` - refuses it with a medhub
error naming the file, and the marker never appears. A config.json asking for width 10^9 is refused
(ConfigError) in a process whose address space is capped at 2 GiB, i.e. before any allocation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medhub import MedConfig, MedModel

REPO_ROOT = Path(__file__).resolve().parents[1]


class Evil:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from medhub.zoo import CHECKPOINTS

    tmp = tmp_path_factory.mktemp("no-code")
    marker = tmp / "PWNED"
    torch.manual_seed(0)
    config = MedConfig.for_model("medhub-unet", in_channels=1, num_labels=2, base_width=2, depth=1, padding="same")
    good = tmp / "good"
    MedModel.from_config(config).save_pretrained(good)
    pickle_only = tmp / "pickle-only"
    pickle_only.mkdir()
    (pickle_only / "config.json").write_text((good / "config.json").read_text())
    torch.save({"weight": Evil(marker)}, pickle_only / "pytorch_model.bin")
    both = tmp / "both"  # safetensors next to a malicious .bin: the .bin must never be read
    both.mkdir()
    for name in ("config.json", "model.safetensors"):
        (both / name).write_bytes((good / name).read_bytes())
    torch.save({"weight": Evil(marker)}, both / "pytorch_model.bin")
    checkpoint = tmp / "resnet18.pth"
    torch.save({"state_dict": {"conv1.weight": Evil(marker)}}, checkpoint)
    zoo = tmp / "zoo"
    entry = sorted(CHECKPOINTS, key=lambda c: c.id)[0]
    zoo_id = entry.id
    (zoo / zoo_id).mkdir(parents=True)
    entry.config().save_pretrained(zoo / zoo_id)
    torch.save({"weight": Evil(marker)}, zoo / zoo_id / "pytorch_model.bin")
    absurd = tmp / "absurd"
    absurd.mkdir()
    data = json.loads((good / "config.json").read_text())
    (absurd / "config.json").write_text(json.dumps({**data, "base_width": 10**9}))
    (absurd / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes())
    image = tmp / "image.png"
    from PIL import Image

    Image.new("L", (32, 32), 128).save(image)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp / "hf"), "MEDHUB_ZOO_DIR": str(zoo),
           "OMP_NUM_THREADS": "1"}
    return {"tmp": tmp, "marker": marker, "pickle_only": pickle_only, "both": both, "checkpoint": checkpoint,
            "zoo_id": zoo_id, "absurd": absurd, "image": image, "env": env}


CLIENT = r"""
import json, resource, sys, traceback
limit = int(sys.argv[2])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import medhub, transformers
from medhub import MedModel
code = sys.argv[1]
try:
    exec(code)
    print(json.dumps({"ok": True}))
except Exception as err:
    print(json.dumps({"ok": False, "type": type(err).__name__, "medhub": isinstance(err, medhub.MedhubError),
                      "message": str(err)}))
"""


def client(world, code: str, memory_limit: int = 0) -> dict:
    run = subprocess.run([sys.executable, "-c", CLIENT, code, str(memory_limit)], env=world["env"],
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"client died (status {run.returncode}): {run.stderr[-2000:]}"
    return json.loads(lines[-1])


LOAD_PATHS = {
    "MedModel.from_pretrained": "MedModel.from_pretrained({folder!r})",
    "AutoModel.from_pretrained": "transformers.AutoModel.from_pretrained({folder!r})",
    "AutoModelForSemanticSegmentation": "transformers.AutoModelForSemanticSegmentation.from_pretrained({folder!r})",
    "pipeline": "medhub.pipeline('image-segmentation', model={folder!r})",
}


@pytest.mark.parametrize("path", sorted(LOAD_PATHS))
def test_pickle_only_folder_is_refused_by_every_python_load_path(world, path):
    result = client(world, LOAD_PATHS[path].format(folder=str(world["pickle_only"])))
    assert not result["ok"] and result["medhub"], result
    assert result["type"] == "PickleWeightsError" and "pytorch_model.bin" in result["message"], result
    assert not world["marker"].exists()


def test_safetensors_next_to_a_malicious_bin_loads_without_reading_the_bin(world):
    result = client(world, f"MedModel.from_pretrained({str(world['both'])!r})")
    assert result["ok"], result
    assert not world["marker"].exists()


def test_spaces_load_model_refuses_a_pickle_only_zoo_entry(world):
    result = client(world, f"from medhub.spaces.loading import load_model; load_model({world['zoo_id']!r})")
    assert not result["ok"] and result["type"] == "PickleWeightsError", result
    assert not world["marker"].exists()


def test_medhub_convert_refuses_a_malicious_checkpoint(world):
    run = subprocess.run([sys.executable, "-m", "medhub", "convert", str(world["checkpoint"]),
                          str(world["tmp"] / "converted"), "--arch", "resnet18"],
                         env=world["env"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "resnet18.pth" in run.stderr and "weights_only=True" in run.stderr, run.stderr[-2000:]
    assert not world["marker"].exists() and not (world["tmp"] / "converted").exists()


def test_medhub_convert_only_unpickles_with_weights_only():
    calls = re.findall(r"torch\.load\(([^)]*)\)", (REPO_ROOT / "src/medhub/convert.py").read_text())
    assert calls and all("weights_only=True" in c for c in calls), calls
    for file in (REPO_ROOT / "src/medhub").rglob("*.py"):  # nothing else in medhub unpickles
        text = re.sub(r'""".*?"""|#.*', "", file.read_text(), flags=re.S)
        assert "pickle.load" not in text and "allow_pickle=True" not in text.replace("write_array", ""), file
        assert file.name == "convert.py" or not re.search(r"torch\.load\(", text), file


def test_medhub_predict_refuses_a_pickle_only_model(world):
    run = subprocess.run([sys.executable, "-m", "medhub", "predict", str(world["pickle_only"]), str(world["image"]),
                          "--out", str(world["tmp"] / "pred"), "--no-progress"],
                         env=world["env"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "pickle" in run.stderr.lower(), run.stderr[-2000:]
    assert not world["marker"].exists()


def test_control_the_payload_does_run_when_unpickled(world, tmp_path):
    control = tmp_path / "control.bin"
    torch.save({"w": Evil(tmp_path / "control-marker")}, control)
    torch.load(control, weights_only=False)
    assert (tmp_path / "control-marker").exists()  # so the markers' absence above means "never unpickled"


@pytest.mark.parametrize("code", [
    "MedModel.from_pretrained({folder!r})",
    "transformers.AutoModel.from_pretrained({folder!r})",
    "medhub.MedConfig.from_pretrained({folder!r})",
])
def test_absurd_config_is_refused_before_any_allocation(world, code):
    result = client(world, code.format(folder=str(world["absurd"])), memory_limit=2 * 2**30)
    assert not result["ok"] and result["type"] == "ConfigError", result
    assert "base_width" in result["message"] and "1000000000" in result["message"], result
    if not code.startswith("transformers"):  # transformers' own config loading does not add the file name
        assert "config.json" in result["message"], result
